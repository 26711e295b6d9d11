//! Errors from parsing and validating a policy or gate config. Every one carries the
//! line and column (1-based) of the offending text, so `callerid check` can point at it.

use std::fmt;
use std::ops::Range;

/// What kind of problem a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// Not valid TOML, or a value of the wrong type, or an unknown / missing key.
    Syntax,
    /// Well-formed TOML that breaks a rule of the schema (too-short container prefix,
    /// unknown runtime, duplicate name, forgeable attribute, …).
    Invalid,
}

/// A policy or gate config that cannot be used, with where and why.
///
/// `Display` gives `LINE:COLUMN: MESSAGE`; prefix the file name for a compiler-style line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ConfigError {
    /// Syntax or validation.
    pub kind: ConfigErrorKind,
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of the offending text.
    pub column: usize,
    /// What is wrong, and where possible how to fix it.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn at(
        text: &str,
        span: Option<Range<usize>>,
        kind: ConfigErrorKind,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = span.map_or((1, 1), |s| line_col(text, s.start));
        Self {
            kind,
            line,
            column,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(text: &str, span: Range<usize>, message: impl fmt::Display) -> Self {
        Self::at(
            text,
            Some(span),
            ConfigErrorKind::Invalid,
            message.to_string(),
        )
    }
}

impl From<(&str, toml::de::Error)> for ConfigError {
    fn from((text, err): (&str, toml::de::Error)) -> Self {
        Self::at(
            text,
            err.span(),
            ConfigErrorKind::Syntax,
            err.message().trim_end().to_owned(),
        )
    }
}

/// 1-based line and character column of byte `offset` in `text` (clamped to the text).
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Byte offsets of line starts, for many offset → line lookups in one text.
pub(crate) struct Lines(Vec<usize>);

impl Lines {
    pub(crate) fn new(text: &str) -> Self {
        Self(
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }
    /// 1-based line of byte `offset`.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::{Lines, line_col};

    #[test]
    fn lines_agree_with_line_col() {
        let t = "a\n\nbc\nd";
        let l = Lines::new(t);
        for off in 0..=t.len() {
            assert_eq!(l.line(off), line_col(t, off).0, "offset {off}");
        }
    }

    #[test]
    fn line_col_counts_from_one_in_chars() {
        let t = "ab\ncé\nx";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 6), (2, 3));
        assert_eq!(line_col(t, 7), (3, 1));
        assert_eq!(line_col(t, 999), (3, 2));
        // inside the two-byte é: clamps back to its start
        assert_eq!(line_col(t, 5), (2, 2));
    }
}
