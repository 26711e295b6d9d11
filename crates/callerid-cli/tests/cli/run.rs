//! Running the built `callerid` binary once and reading what it printed.

use std::process::{Command, Output, Stdio};

/// Runs `callerid ARGS` with stdin on `/dev/null` and collects its output.
pub(crate) fn callerid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callerid"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run callerid")
}

/// Output bytes as text (lossy: a test message must show whatever came out).
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
