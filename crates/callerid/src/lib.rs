//! callerid: caller ID for Unix-domain sockets on Linux.
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod cache;
mod cgroup;
mod connect_cgroup;
mod error;
mod features;
mod identifier;
mod identity;
mod ids;
mod parse;
mod process;
mod sys;
mod userns;
pub mod workload;

pub use connect_cgroup::ConnectCgroupSource;
pub use error::{Error, Result, WrongSocketKind};
pub use features::{Feature, FeatureStatus, Features, Privileges};
pub use identifier::{Identifier, IdentifierBuilder, Parts};
pub use identity::*;
pub use ids::*;
