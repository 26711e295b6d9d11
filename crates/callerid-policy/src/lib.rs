//! callerid-policy: policy file → validated rules → decision with explanation. Pure.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
