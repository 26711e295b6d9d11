//! End-to-end tests of the `callerid` binary, one module per subcommand.

mod classify;
