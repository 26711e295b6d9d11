//! Daemon integration tests: real sockets, processes and cgroups, the daemon running
//! in-process on its own runtime.
#![allow(clippy::unwrap_used)]

mod support;

mod audit;
mod drain;
mod examples;
mod forward;
mod limits;
mod matrix;
mod metrics;
mod proxy;
mod reload;
mod serve;
