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

/// `cg_path_get_unit` over `comps[start..]`.
pub(crate) fn unit<'a>(comps: &[&'a str], start: usize) -> Option<&'a str> {
    let i = skip_slices(comps, start);
    let u = decode_unit(comps.get(i)?)?;
    (!u.ends_with(".slice")).then_some(u)
}

fn skip_user_manager(comps: &[&str]) -> Option<usize> {
    let i = skip_slices(comps, 0);
    let c = comps.get(i)?;
    let uid = c.strip_prefix("user@")?.strip_suffix(".service")?;
    (!uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit())).then_some(i + 1)
}

fn skip_session(comps: &[&str]) -> Option<usize> {
    let i = skip_slices(comps, 0);
    let c = comps.get(i)?;
    let id = c.strip_prefix("session-")?.strip_suffix(".scope")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(i + 1)
}

/// `cg_path_get_user_unit`: the unit below `user@<uid>.service` or a session scope.
pub(crate) fn user_unit<'a>(comps: &[&'a str]) -> Option<&'a str> {
    let start = skip_user_manager(comps).or_else(|| skip_session(comps))?;
    unit(comps, start)
}

/// `cg_path_get_slice`: the innermost slice of the leading run of slices, or `-.slice`.
pub(crate) fn slice<'a>(comps: &[&'a str]) -> &'a str {
    let end = skip_slices(comps, 0);
    match end.checked_sub(1) {
        Some(last) => cg_unescape(comps[last]),
        None => "-.slice",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: &str) -> Vec<&str> {
        p.split('/').filter(|s| !s.is_empty()).collect()
    }

    #[test]
    fn units_follow_systemd() {
        assert_eq!(
            unit(&c("/system.slice/foobar.service/sdfdsaf"), 0),
            Some("foobar.service")
        );
        assert_eq!(
            unit(&c("/system.slice/getty####@tty6.service/xxx"), 0),
            None
        );
        assert_eq!(
            unit(&c("/system.slice/system-waldo.slice/_cpu.service/x"), 0),
            Some("cpu.service")
        );
        assert_eq!(
            unit(
                &c("/user.slice/user-1000.slice/user@.service/server.service"),
                0
            ),
            None
        );
        assert_eq!(
            user_unit(&c(
                "/user.slice/user-1000.slice/user@.service/server.service"
            )),
            None
        );
        assert_eq!(
            user_unit(&c(
                "/xyz.slice/xyz-waldo.slice/session-77.scope/foobar@pie.service/pa/po"
            )),
            Some("foobar@pie.service")
        );
        assert_eq!(
            user_unit(&c(
                "/user.slice/user-1000.slice/session-2.scope/waldo/waldo/uuuux"
            )),
            None
        );
        assert_eq!(
            slice(&c("foo.slice/foo-bar.slice/waldo.service")),
            "foo-bar.slice"
        );
        assert_eq!(slice(&c("/foobar")), "-.slice");
        assert_eq!(unit(&c("/session-.scope"), 0), Some("session-.scope"));
        assert_eq!(unit(&c("/user.slice"), 0), None);
    }
}
