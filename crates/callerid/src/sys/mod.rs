//! The only unsafe code of the crate: thin, checked wrappers around the kernel calls
//! rustix does not cover (SO_PEERPIDFD, SO_PEERGROUPS, SO_PEERSEC, PIDFD_GET_INFO,
//! open_by_handle_at on the cgroup2 mount).
#![allow(unsafe_code)]
