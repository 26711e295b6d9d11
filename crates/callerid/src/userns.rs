//! `uid_map` / `gid_map` parsing and translation of ids into the peer's own user
//! namespace.
//!
//! A map read through `/proc/<pid>/uid_map` is shown relative to the *reader's* user
//! namespace: each line is `inside outside count`, where `outside` is an id as we see
//! it. The kernel already maps `SO_PEERCRED` ids into our namespace, so translating a
//! peer uid into the peer's namespace is a lookup of the line whose `outside` range
//! holds it.
//!
//! **Rule for `initial`:** the peer is in the initial user namespace when the inode of
//! its user namespace is `PROC_USER_INIT_INO` (0xEFFFFFFD, fixed by the kernel since
//! 3.8). Only when the inode is unknown do we fall back to "the map is the full
//! identity map `0 0 4294967295`", which is what the init namespace looks like from
//! the init namespace (it is *not* what it looks like from inside a child namespace,
//! which is why the inode is preferred).

use crate::identity::IdMapLine;
use crate::parse::ParseError;

const WHAT: &str = "uid_map/gid_map";

/// Parses the text of a `uid_map` or `gid_map` file. An empty file (map not written
/// yet) is an empty map.
pub(crate) fn parse_id_map(text: &str) -> Result<Vec<IdMapLine>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut it = line.split_ascii_whitespace();
        let mut field = || -> Result<u32, ParseError> {
            it.next()
                .ok_or(ParseError::new(WHAT, n, "expected three fields"))?
                .parse::<u32>()
                .map_err(|_| ParseError::new(WHAT, n, "field is not a 32-bit number"))
        };
        let inside = field()?;
        let outside = field()?;
        let count = field()?;
        if it.next().is_some() {
            return Err(ParseError::new(WHAT, n, "more than three fields"));
        }
        if count == 0 {
            return Err(ParseError::new(WHAT, n, "count is zero"));
        }
        // No overflow check on `outside + count`: seen from inside a child namespace, the
        // initial namespace's map reads `0 4294967295 4294967295` (unmapped = -1).
        // The kernel allows at most 340 lines (UID_GID_MAP_MAX_EXTENTS).
        if out.len() >= 340 {
            return Err(ParseError::new(WHAT, n, "more than 340 lines"));
        }
        out.push([inside, outside, count]);
    }
    Ok(out)
}

/// Translates an id as *we* see it into the id inside the namespace the map belongs
/// to; `None` when the id is not mapped there.
pub(crate) fn to_inside(map: &[IdMapLine], ours: u32) -> Option<u32> {
    map.iter().find_map(|&[inside, outside, count]| {
        let off = ours.checked_sub(outside)?;
        if off < count {
            inside.checked_add(off)
        } else {
            None
        }
    })
}

/// `true` for the full identity map `0 0 4294967295`.
pub(crate) fn is_identity_map(map: &[IdMapLine]) -> bool {
    map == [[0, 0, u32::MAX]]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_kernel_forms() {
        assert_eq!(
            parse_id_map("         0          0 4294967295\n"),
            Ok(vec![[0, 0, u32::MAX]])
        );
        assert_eq!(
            parse_id_map("0 100000 65536\n65536 1000 1\n"),
            Ok(vec![[0, 100000, 65536], [65536, 1000, 1]])
        );
        assert_eq!(parse_id_map(""), Ok(vec![]));
        assert!(parse_id_map("0 1").is_err());
        assert!(parse_id_map("0 1 0").is_err());
        assert_eq!(
            parse_id_map("0 4294967295 4294967295"),
            Ok(vec![[0, u32::MAX, u32::MAX]])
        );
        assert_eq!(to_inside(&[[0, u32::MAX, u32::MAX]], 0), None);
        assert!(parse_id_map("a b c").is_err());
    }

    #[test]
    fn translates() {
        let m = [[0, 100000, 65536], [1000, 5000, 1]];
        assert_eq!(to_inside(&m, 100000), Some(0));
        assert_eq!(to_inside(&m, 100005), Some(5));
        assert_eq!(to_inside(&m, 5000), Some(1000));
        assert_eq!(to_inside(&m, 99999), None);
        assert_eq!(to_inside(&m, 165536), None);
        assert_eq!(to_inside(&[[0, 0, u32::MAX]], 4242), Some(4242));
        assert!(is_identity_map(&[[0, 0, u32::MAX]]));
        assert!(!is_identity_map(&[[0, 4294967295, 4294967295]]));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(s in ".{0,200}") {
            let _ = parse_id_map(&s);
        }

        #[test]
        fn numeric_garbage_never_panics(s in "[0-9 \n\t-]{0,120}") {
            if let Ok(map) = parse_id_map(&s) {
                for &[i, o, c] in &map {
                    prop_assert!(c > 0);
                    prop_assert_eq!(to_inside(&map, o), to_inside(&map, o));
                    let _ = i;
                }
            }
        }

        #[test]
        fn roundtrip(lines in proptest::collection::vec((0u32..1<<31, 0u32..1<<31, 1u32..1<<30), 0..10)) {
            let text: String = lines.iter().map(|(a, b, c)| format!("{a:>10} {b:>10} {c:>10}\n")).collect();
            let parsed = parse_id_map(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed.len(), lines.len());
            for (p, (a, b, c)) in parsed.iter().zip(&lines) {
                prop_assert_eq!(*p, [*a, *b, *c]);
                prop_assert!(to_inside(&parsed, *b).is_some());
            }
        }
    }
}
