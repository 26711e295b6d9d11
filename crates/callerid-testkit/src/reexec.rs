//! Re-executing the running test binary as a helper process (a *role*): the child runs
//! just one test of the binary, which looks at its environment and becomes the role.
//!
//! The helper is a real separate process (its own pid, credentials and cgroup), which
//! is what identification must be tested against; `socketpair()` would only ever show
//! the test itself.

use std::io;
use std::process::Command;

/// A command running only the test `test` (its full path, e.g. `peers::peers_role`) of
/// the current test binary, with output not captured and libtest's own output kept short.
pub fn command(test: &str) -> io::Result<Command> {
    wrapped(&[], test)
}

/// [`command`] run through `wrapper` (e.g. `["unshare", "-U"]` or a `setpriv` line);
/// an empty `wrapper` runs the binary directly.
pub fn wrapped(wrapper: &[&str], test: &str) -> io::Result<Command> {
    let exe = std::env::current_exe()?;
    let mut c = match wrapper.split_first() {
        Some((prog, args)) => {
            let mut c = Command::new(prog);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    c.args(["--exact", test, "--nocapture", "--test-threads=1", "-q"]);
    Ok(c)
}
