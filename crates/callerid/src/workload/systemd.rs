//! systemd's own reading of a cgroup path: the unit, the user unit and the slice, after
//! `cg_path_get_unit`, `cg_path_get_user_unit` and `cg_path_get_slice` in systemd's
//! `src/basic/cgroup-util.c`. The functions take the path split into components
//! (empty components from doubled slashes already dropped, as systemd skips them).
//!
//! One deliberate difference: systemd accepts `user@<uid>.service` only when `<uid>`
//! parses as a valid uid; we accept any decimal number there, so that a user manager
//! whose uid is out of range (seen in spire's fixtures) still yields its user unit.

/// Unit types systemd knows (`unit_type_from_string`).
const UNIT_TYPES: &[&str] = &[
    "service",
    "mount",
    "swap",
    "socket",
    "target",
    "device",
    "automount",
    "timer",
    "path",
    "slice",
    "scope",
];

/// systemd's `UNIT_NAME_MAX`.
const UNIT_NAME_MAX: usize = 256;

/// The leading `_` that systemd adds to cgroup names that could clash with kernel
/// files (`cg_escape`) is removed.
pub(crate) fn cg_unescape(c: &str) -> &str {
    c.strip_prefix('_').unwrap_or(c)
}

/// Which unit-name forms are acceptable (`UNIT_NAME_PLAIN` / `UNIT_NAME_INSTANCE`).
#[derive(Clone, Copy)]
pub(crate) struct Forms {
    plain: bool,
    instance: bool,
}

pub(crate) const PLAIN: Forms = Forms {
    plain: true,
    instance: false,
};
pub(crate) const PLAIN_OR_INSTANCE: Forms = Forms {
    plain: true,
    instance: true,
};

/// `unit_name_is_valid`.
pub(crate) fn unit_name_is_valid(n: &str, forms: Forms) -> bool {
    if n.is_empty() || n.len() >= UNIT_NAME_MAX {
        return false;
    }
    let Some(dot) = n.rfind('.') else {
        return false;
    };
    if dot == 0 || !UNIT_TYPES.contains(&&n[dot + 1..]) {
        return false;
    }
    let prefix = &n.as_bytes()[..dot];
    let mut at = None;
    for (i, &c) in prefix.iter().enumerate() {
        if c == b'@' && at.is_none() {
            at = Some(i);
        }
        if !(c.is_ascii_alphanumeric() || matches!(c, b':' | b'-' | b'_' | b'.' | b'\\' | b'@')) {
            return false;
        }
    }
    match at {
        Some(0) => false,
        None => forms.plain,
        Some(a) => forms.instance && dot > a + 1,
    }
}

/// A name that ends in a unit type suffix (`.service`, `.scope`, …): such names are
/// never container ids.
pub(crate) fn has_unit_suffix(n: &str) -> bool {
    n.rsplit_once('.')
        .is_some_and(|(_, t)| UNIT_TYPES.contains(&t))
}

fn valid_slice_name(c: &str) -> bool {
    c.len() >= "x.slice".len() && c.ends_with(".slice") && unit_name_is_valid(cg_unescape(c), PLAIN)
}

fn skip_slices(comps: &[&str], mut i: usize) -> usize {
    while comps.get(i).is_some_and(|c| valid_slice_name(c)) {
        i += 1;
    }
    i
}

fn decode_unit(c: &str) -> Option<&str> {
    let u = cg_unescape(c);
    unit_name_is_valid(u, PLAIN_OR_INSTANCE).then_some(u)
}

/// `cg_path_get_unit`, `cg_path_get_user_unit` and `cg_path_get_slice` at once, sharing
/// the walk over the leading slices.
pub(crate) fn units<'a>(comps: &[&'a str]) -> (Option<&'a str>, Option<&'a str>, &'a str) {
    let lead = skip_slices(comps, 0);
    let slice = match lead.checked_sub(1) {
        Some(last) => cg_unescape(comps[last]),
        None => "-.slice",
    };
    let system_unit = unit_after(comps, lead);
    let user_unit = comps.get(lead).and_then(|c| {
        let after = (is_user_manager(c) || is_session(c)).then_some(lead + 1)?;
        unit(comps, after)
    });
    (system_unit, user_unit, slice)
}

fn unit_after<'a>(comps: &[&'a str], i: usize) -> Option<&'a str> {
    let u = decode_unit(comps.get(i)?)?;
    (!u.ends_with(".slice")).then_some(u)
}

fn is_user_manager(c: &str) -> bool {
    c.strip_prefix("user@")
        .and_then(|c| c.strip_suffix(".service"))
        .is_some_and(|uid| !uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit()))
}

fn is_session(c: &str) -> bool {
    c.strip_prefix("session-")
        .and_then(|c| c.strip_suffix(".scope"))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `cg_path_get_unit` over `comps[start..]`.
pub(crate) fn unit<'a>(comps: &[&'a str], start: usize) -> Option<&'a str> {
    unit_after(comps, skip_slices(comps, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: &str) -> Vec<&str> {
        p.split('/').filter(|s| !s.is_empty()).collect()
    }

    fn unit_of(p: &str) -> Option<&str> {
        units(&c(p)).0
    }

    fn user_unit_of(p: &str) -> Option<&str> {
        units(&c(p)).1
    }

    #[test]
    fn units_follow_systemd() {
        assert_eq!(
            unit_of("/system.slice/foobar.service/sdfdsaf"),
            Some("foobar.service")
        );
        assert_eq!(unit_of("/system.slice/getty####@tty6.service/xxx"), None);
        assert_eq!(
            unit_of("/system.slice/system-waldo.slice/_cpu.service/x"),
            Some("cpu.service")
        );
        assert_eq!(
            unit_of("/user.slice/user-1000.slice/user@.service/server.service"),
            None
        );
        assert_eq!(
            user_unit_of("/user.slice/user-1000.slice/user@.service/server.service"),
            None
        );
        assert_eq!(
            user_unit_of("/xyz.slice/xyz-waldo.slice/session-77.scope/foobar@pie.service/pa/po"),
            Some("foobar@pie.service")
        );
        assert_eq!(
            user_unit_of("/user.slice/user-1000.slice/session-2.scope/waldo/waldo/uuuux"),
            None
        );
        assert_eq!(
            units(&c("foo.slice/foo-bar.slice/waldo.service")).2,
            "foo-bar.slice"
        );
        assert_eq!(units(&c("/foobar")).2, "-.slice");
        assert_eq!(unit_of("/session-.scope"), Some("session-.scope"));
        assert_eq!(unit_of("/user.slice"), None);
        assert_eq!(
            units(&c(
                "/user.slice/user-1000.slice/user@1000.service/server.service"
            )),
            (
                Some("user@1000.service"),
                Some("server.service"),
                "user-1000.slice"
            )
        );
    }
}
