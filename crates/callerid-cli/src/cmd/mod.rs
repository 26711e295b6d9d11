//! One module per subcommand: its `Args` and its `run`.

pub(crate) mod check;
pub(crate) mod classify;
pub(crate) mod doctor;
pub(crate) mod explain;
pub(crate) mod gate;
pub(crate) mod peers;
pub(crate) mod serve;
pub(crate) mod whoami;
pub(crate) mod whois;
