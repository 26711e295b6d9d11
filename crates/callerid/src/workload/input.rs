//! Reading the input (lines, paths, components) and choosing the line that decides;
//! the rules are in the module docs of `workload`.

use super::walk::{self, Cx};
use super::{ChainElement, ContainerRef, Kind, Pod, Workload, systemd};

/// Components kept on the stack; deeper paths spill to the heap.
const SMALL: usize = 16;

struct Comps<'a> {
    small: [&'a str; SMALL],
    len: usize,
    big: Vec<&'a str>,
    relative: bool,
}

impl<'a> Comps<'a> {
    fn split(path: &'a str) -> Self {
        let mut out = Comps {
            small: [""; SMALL],
            len: 0,
            big: Vec::new(),
            relative: false,
        };
        for c in path.split('/') {
            let c = c.trim_ascii();
            if c.is_empty() || c == "." {
                continue;
            }
            if c == ".." && out.len == 0 && out.big.is_empty() {
                out.relative = true;
                continue;
            }
            out.push(c);
        }
        out
    }

    fn push(&mut self, c: &'a str) {
        if self.big.is_empty() && self.len < SMALL {
            self.small[self.len] = c;
            self.len += 1;
        } else {
            if self.big.is_empty() {
                self.big.extend_from_slice(&self.small[..self.len]);
            }
            self.big.push(c);
        }
    }

    fn as_slice(&self) -> &[&'a str] {
        if self.big.is_empty() {
            &self.small[..self.len]
        } else {
            &self.big
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// `0::path`.
    Unified,
    /// A v1 line of the `name=systemd` hierarchy.
    SystemdNamed,
    /// Any other v1 line, or a bare path.
    Other,
}

/// What one line says.
struct LineResult<'a> {
    chain: Vec<ChainElement<'a>>,
    pod: Option<Pod<'a>>,
    unit: Option<&'a str>,
    user_unit: Option<&'a str>,
    slice: &'a str,
}

impl LineResult<'_> {
    fn names_workload(&self) -> bool {
        !self.chain.is_empty()
    }
}

fn strip_deleted(p: &str) -> &str {
    p.strip_suffix(" (deleted)").unwrap_or(p).trim_ascii()
}

/// A line's kind and path, or `None` for blank, malformed or free-text lines.
fn parse_line(raw: &str) -> Option<(LineKind, &str)> {
    let line = raw.trim_ascii();
    if line.is_empty() {
        return None;
    }
    // Only a line that starts with a digit can be `N:controllers:path`.
    if line.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && let Some((h, rest)) = line.split_once(':')
        && !h.is_empty()
        && h.bytes().all(|b| b.is_ascii_digit())
    {
        let (controllers, path) = rest.split_once(':')?;
        let kind = if h == "0" && controllers.is_empty() {
            LineKind::Unified
        } else if controllers
            .split(',')
            .any(|c| c == "name=systemd" || c == "systemd")
        {
            LineKind::SystemdNamed
        } else {
            LineKind::Other
        };
        return Some((kind, strip_deleted(path)));
    }
    let path = strip_deleted(line);
    let bare = path.starts_with('/')
        || path.starts_with('.')
        || !path.bytes().any(|b| b == b':' || b.is_ascii_whitespace());
    bare.then_some((LineKind::Other, path))
}

fn analyse(path: &str) -> LineResult<'_> {
    let comps = Comps::split(path);
    let slice = comps.as_slice();
    let found = walk::walk(&Cx::new(slice, comps.relative));
    let (unit, user_unit, slice) = systemd::units(slice);
    LineResult {
        chain: found.chain,
        pod: found.pod,
        unit,
        user_unit,
        slice,
    }
}

fn lines(input: &str) -> impl Iterator<Item = (LineKind, &str)> {
    input.split('\n').filter_map(parse_line)
}

fn extends(longer: &[ChainElement<'_>], prefix: &[ChainElement<'_>]) -> bool {
    longer.len() > prefix.len() && longer[..prefix.len()] == *prefix
}

fn into_workload(r: LineResult<'_>) -> Workload<'_> {
    let container = r
        .chain
        .iter()
        .rev()
        .find(|e| e.kind == Kind::Container)
        .map(|e| ContainerRef {
            runtime: e.runtime,
            id: e.id.clone(),
        });
    Workload {
        container,
        pod: r.pod,
        chain: r.chain,
        unit: r.unit.map(Into::into),
        user_unit: r.user_unit.map(Into::into),
        slice: Some(r.slice.into()),
    }
}

pub(crate) fn classify(input: &str) -> Workload<'_> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    // One line (a bare path, the common case for a cache miss): it decides, whatever
    // it is, and there is nothing to choose between.
    if !input.contains('\n') {
        return parse_line(input)
            .map_or_else(Workload::default, |(_, p)| into_workload(analyse(p)));
    }
    let unified = lines(input)
        .find(|(k, _)| *k == LineKind::Unified)
        .map(|(_, p)| analyse(p));
    let others = || lines(input).filter(|(k, _)| *k != LineKind::Unified);

    if let Some(u) = unified.as_ref().filter(|u| u.names_workload()) {
        let mut best: Option<LineResult<'_>> = None;
        for (_, p) in others() {
            let r = analyse(p);
            let longer = best.as_ref().is_none_or(|b| r.chain.len() > b.chain.len());
            if extends(&r.chain, &u.chain) && longer {
                best = Some(r);
            }
        }
        return match (best, unified) {
            (Some(b), _) => into_workload(b),
            (None, Some(u)) => into_workload(u),
            (None, None) => Workload::default(),
        };
    }

    let mut systemd_named: Option<LineResult<'_>> = None;
    let mut first_with_unit: Option<LineResult<'_>> = None;
    let mut first: Option<LineResult<'_>> = None;
    for (k, p) in others() {
        let r = analyse(p);
        if r.names_workload() {
            return into_workload(r);
        }
        if k == LineKind::SystemdNamed
            && systemd_named
                .as_ref()
                .is_none_or(|s| s.unit.is_none() && r.unit.is_some())
        {
            systemd_named = Some(r);
        } else if r.unit.is_some() && first_with_unit.is_none() {
            first_with_unit = Some(r);
        } else if first.is_none() {
            first = Some(r);
        }
    }
    let has_unit = |r: &Option<LineResult<'_>>| r.as_ref().is_some_and(|r| r.unit.is_some());
    let chosen = if has_unit(&unified) {
        unified
    } else if has_unit(&systemd_named) {
        systemd_named
    } else if first_with_unit.is_some() {
        first_with_unit
    } else {
        unified.or(systemd_named).or(first)
    };
    chosen.map_or_else(Workload::default, into_workload)
}
