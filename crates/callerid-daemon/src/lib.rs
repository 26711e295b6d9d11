//! callerid-daemon: `serve` and `gate`.
//!
//! A connection's way through the daemon:
//! accept → identify → decide (policy, listener `expect`, limits) → audit → answer
//! (`serve`) or forward to the backend (`gate`) | close.
//!
//! The accept workers never wait on a peer: identification is kernel queries (and
//! verified `/proc` reads that do not take the peer's locks), the decision is pure, the
//! audit record goes to a bounded queue, and a `serve` answer is one non-blocking write
//! into an empty socket buffer. Only forwarding (and the rare answer that does not fit
//! the socket buffer) gets a task of its own.
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod activation;
mod audit;
mod capture;
mod config;
mod daemon;
mod decision;
mod error;
mod forward;
mod limits;
mod listener;
mod metrics;
mod owner;
pub mod proxy;
#[allow(unsafe_code)]
mod sys;

pub use activation::{InheritedSocket, take as take_activated_sockets};
pub use audit::AuditSink;
pub use capture::ConnectCapture;
pub use config::{DEFAULT_DECISION_TIMEOUT, ListenerSpec, parse_mode};
pub use daemon::{Daemon, DaemonConfig, Handle, ListenerInfo, Mode, ReloadError};
pub use decision::{Decision, PolicySource};
pub use error::Error;
pub use forward::{RelayMode, SPLICE_AFTER};
pub use listener::Origin;
pub use metrics::MetricsAddr;
pub use owner::Owner;
