//! End-to-end tests of the `callerid` binary, one module per subcommand family.
#![allow(clippy::unwrap_used)]

mod check_explain;
mod classify;
mod daemon_support;
mod gate;
mod peers;
mod run;
mod serve;
mod whoami;
mod whois_doctor;
