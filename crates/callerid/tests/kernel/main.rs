//! Integration tests against the real kernel: real sockets, pidfds, cgroups,
//! namespaces and processes. Separate peer processes are this test binary re-executed
//! in a *role* (see [`support::role_entry`]).

mod support;

mod adversary;
mod badinput;
mod basic;
mod cgroups;
mod exited;
mod fallbacks;
mod namespaces;
mod peers;
mod workload_e2e;

/// The entry point of helper roles: does nothing in a normal test run.
#[test]
fn role_entry() {
    support::role_entry();
}
