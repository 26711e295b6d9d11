//! The error of the small parsers of kernel text (`/proc` files, mountinfo).

use std::fmt;

/// Text from the kernel that did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// Which file format.
    pub(crate) what: &'static str,
    /// 1-based line number, 0 when not line-related.
    pub(crate) line: usize,
    /// What was wrong.
    pub(crate) detail: &'static str,
}

impl ParseError {
    pub(crate) const fn new(what: &'static str, line: usize, detail: &'static str) -> Self {
        Self { what, line, detail }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.what, self.detail)
        } else {
            write!(f, "{} line {}: {}", self.what, self.line, self.detail)
        }
    }
}

impl std::error::Error for ParseError {}
