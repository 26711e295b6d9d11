//! callerid-daemon: `serve` and `gate`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
