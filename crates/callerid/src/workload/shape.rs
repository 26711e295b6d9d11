//! Id shapes shared by the runtime families, and the string helpers that keep
//! results borrowed from the input unless a change (lowercasing, unescaping) is needed.

use std::borrow::Cow;

/// `s` is non-empty ASCII hex (either case).
pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Lowercases ASCII, allocating only when there is an uppercase letter.
pub(crate) fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Exactly 64 hex digits: the id shape of docker, podman, containerd and CRI-O.
pub(crate) fn id64(s: &str) -> Option<Cow<'_, str>> {
    (s.len() == 64 && is_hex(s)).then(|| lower(s))
}

/// A 64-hex id, alone or followed by `.<suffix>` (`.scope` from systemd, or whatever
/// a tool appended; the suffix is never part of the id).
pub(crate) fn id64_suffixed(s: &str) -> Option<Cow<'_, str>> {
    match s.as_bytes().get(64) {
        None | Some(b'.') => id64(s.get(..64)?),
        Some(_) => None,
    }
}

/// A 64-hex id alone or with `.scope`.
pub(crate) fn id64_or_scope(s: &str) -> Option<Cow<'_, str>> {
    id64(s.strip_suffix(".scope").unwrap_or(s))
}

/// `8-4-4-4-12` hex with `sep` as the separator.
fn is_uuid_with(s: &str, sep: u8) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == sep,
            _ => c.is_ascii_hexdigit(),
        })
}

/// A dashed `8-4-4-4-12` UUID.
pub(crate) fn is_uuid(s: &str) -> bool {
    is_uuid_with(s, b'-')
}

/// A UUID dashed or with systemd's `_` separators, as a lowercase dashed UUID.
pub(crate) fn uuid_canonical(s: &str) -> Option<Cow<'_, str>> {
    if is_uuid_with(s, b'-') {
        Some(lower(s))
    } else if is_uuid_with(s, b'_') {
        Some(Cow::Owned(s.to_ascii_lowercase().replace('_', "-")))
    } else {
        None
    }
}

/// Undoes systemd's unit-name escaping (`\x2d` is `-`, `\xNN` any byte). Borrows when
/// there is nothing to undo; keeps the text as is when the result would not be UTF-8.
pub(crate) fn systemd_unescape(s: &str) -> Cow<'_, str> {
    if !s.contains("\\x") {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            let hi = b.get(i + 2).and_then(|c| (*c as char).to_digit(16));
            let lo = b.get(i + 3).and_then(|c| (*c as char).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                // Two hex digits are at most 0xff: the cast cannot truncate.
                out.push((hi * 16 + lo) as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(_) => Cow::Borrowed(s),
    }
}

/// `cow` without `prefix`, keeping it borrowed when it was.
pub(crate) fn cow_strip_prefix<'a>(cow: &Cow<'a, str>, prefix: &str) -> Option<Cow<'a, str>> {
    match cow {
        Cow::Borrowed(s) => s.strip_prefix(prefix).map(Cow::Borrowed),
        Cow::Owned(s) => s.strip_prefix(prefix).map(|r| Cow::Owned(r.to_owned())),
    }
}

/// The name shape containerd accepts for namespaces and container ids:
/// `[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`.
pub(crate) fn is_containerd_name(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut prev_sep = false;
    for &c in b {
        let sep = matches!(c, b'.' | b'_' | b'-');
        if !(sep || c.is_ascii_alphanumeric()) || (sep && prev_sep) {
            return false;
        }
        prev_sep = sep;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape() {
        assert_eq!(systemd_unescape("foo\\x2dbar"), "foo-bar");
        assert!(matches!(systemd_unescape("plain"), Cow::Borrowed("plain")));
        assert_eq!(systemd_unescape("bad\\xZZ"), "bad\\xZZ");
        assert_eq!(systemd_unescape("end\\x2"), "end\\x2");
    }

    #[test]
    fn uuids() {
        assert_eq!(
            uuid_canonical("90d81341_92DE_11e7_8cf2_507b9d4141fa").as_deref(),
            Some("90d81341-92de-11e7-8cf2-507b9d4141fa")
        );
        assert!(uuid_canonical("90d81341_92de-11e7_8cf2_507b9d4141fa").is_none());
    }

    #[test]
    fn containerd_names() {
        assert!(is_containerd_name("my_very_long_namespace-1.5"));
        assert!(is_containerd_name("a"));
        assert!(!is_containerd_name(".service"));
        assert!(!is_containerd_name("a..b"));
        assert!(!is_containerd_name("a-"));
    }
}
