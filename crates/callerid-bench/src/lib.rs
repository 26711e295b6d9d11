//! callerid-bench: the measurements behind BENCHMARKS.md, and the helpers the soak and
//! load tests share with them (relays, child-process roles, RSS and fd counts).
//!
//! Not published; the binary `callerid-bench` drives it.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod gate;
pub mod identify;
pub mod measure;
pub mod offline;
pub mod sys;
pub mod table;
