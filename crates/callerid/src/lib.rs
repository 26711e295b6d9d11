//! callerid: caller ID for Unix-domain sockets on Linux.
//!
//! [`Identifier::identify`] turns an accepted `AF_UNIX` stream or seqpacket socket into
//! an immutable [`Identity`]: who connected (the kernel's snapshot at `connect()`), the
//! process behind the connection now (through a pidfd bound to it, never by pid
//! number), its cgroup v2 id and path, namespaces, user namespace and the workload
//! (container, pod, unit) its cgroup names. Every part says where it came from
//! ([`Provenance`]); parts that cannot be had are `None` with a [`Warning`].
//!
//! ```
//! use std::os::unix::net::UnixStream;
//!
//! let ident = callerid::Identifier::new()?;
//! // Either end of a socketpair works too: here the peer is this very process.
//! let (ours, _theirs) = UnixStream::pair()?;
//! let who = ident.identify(&ours)?;
//! assert_eq!(who.peer().pid.map(|p| p.get()), Some(std::process::id()));
//! assert_eq!(who.peer().uid.get(), rustix::process::geteuid().as_raw());
//! println!("{}", serde_json::to_string_pretty(&who)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A server identifies each accepted connection the same way:
//!
//! ```no_run
//! use std::os::unix::net::UnixListener;
//!
//! let ident = callerid::Identifier::new()?;
//! let listener = UnixListener::bind("/run/example.sock")?;
//! for stream in listener.incoming() {
//!     let who = ident.identify(&stream?)?;
//!     println!("{}", serde_json::to_string(&who)?);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Race freedom
//! The pidfd comes from `SO_PEERPIDFD`, so it names the process that called
//! `connect()` even after its pid was reused. Current facts come from `PIDFD_GET_INFO`
//! on that pidfd; the few `/proc` reads go through a `/proc/<pid>` directory fd that is
//! checked against the pidfd *after* it was opened. Kernels without those features fall
//! back to weaker routes and say so in [`ProvenanceMap`] and [`Identity::warnings`];
//! [`Identifier::features`] reports what this kernel offers.
//!
//! # Cost
//! Peer, process (without `comm`/`exe`) and cgroup are kernel calls only; cgroup paths
//! and workloads are cached per cgroup id, user namespace maps per namespace. Choose
//! what to collect with [`Parts`].
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
pub mod peers;
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
