//! callerid: caller ID for Unix-domain sockets on Linux.
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod connect_cgroup;
mod error;
mod identifier;
mod identity;
mod ids;
mod sys;
pub mod workload;

pub use connect_cgroup::ConnectCgroupSource;
pub use error::{Error, Result, WrongSocketKind};
pub use identifier::Identifier;
pub use identity::*;
pub use ids::*;
