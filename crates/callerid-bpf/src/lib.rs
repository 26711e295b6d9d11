//! callerid-bpf: connect-time cgroup capture (DESIGN.md §5).
#![deny(missing_docs)]
