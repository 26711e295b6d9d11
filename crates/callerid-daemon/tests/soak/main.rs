//! Endurance and load tests of `gate` (a test target of its own: `cargo test -p
//! callerid-daemon --test soak`). The daemon runs in a process of its own (this binary
//! re-executed in the `daemon` role) so its descriptors and memory can be measured
//! from /proc; clients are processes too, in real cgroups.
//!
//! The short form (what CI runs) is the default; `CALLERID_SOAK=long` runs the long
//! one (1 M connections). Figures (connections/s, RSS, descriptors) go to stderr:
//! run with `--nocapture` to see them.
#![allow(clippy::unwrap_used)]

mod idle;
mod slowloris;
mod soak;
mod support;

/// Entry point of the re-executed roles (does nothing in a normal run).
#[test]
fn role_entry() {
    support::role_entry();
}
