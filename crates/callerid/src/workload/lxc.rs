//! LXC, LXD and Incus.
//!
//! - Classic LXC: `/lxc/<name>` at an anchored position (root, or right inside another
//!   container). Proxmox: `/lxc/<vmid>/ns/<inner systemd path>`; Heroku: `/lxc/<uuid>`.
//! - LXC ≥ 4, LXD, Incus: `lxc.payload.<name>`; LXD/Incus projects other than the
//!   default one: `lxc.payload.<project>_<name>` (instance names cannot contain `_`,
//!   so the first `_` splits). The id is the instance name; nesting
//!   (`lxc.payload.a_b/…/lxc.payload.c_d`) is a chain and the innermost wins.
//! - `lxc.monitor.<name>` is the monitor process: not the container.
//! - LXC 3's `lxc.payload/<name>` directory form is read as well.
//!
//! Chain: one container per level, runtime `lxc` (system containers are containers;
//! the runtime says which kind). Anything may follow: the container runs a whole
//! system.

use super::walk::{Cx, Family, Found, Leaf, Scheme, Tail};
use super::{ChainElement, Kind, Runtime};
use std::borrow::Cow;

pub(crate) struct Lxc;

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n != "."
        && n != ".."
        && !n.bytes().any(|b| b.is_ascii_whitespace() || b == b':')
}

fn container(id: &str) -> ChainElement<'_> {
    ChainElement {
        kind: Kind::Container,
        runtime: Runtime::Lxc,
        id: Cow::Borrowed(id),
    }
}

impl Family for Lxc {
    fn context_words(&self) -> &'static [&'static str] {
        &["lxc", "lxc.payload", "lxc.monitor", "lxc.pivot"]
    }

    fn scheme<'a>(&self, cx: &Cx<'_, 'a>, i: usize, anchored: bool) -> Scheme<'a> {
        let c = cx.comps[i];
        let strict = match c {
            "lxc" => false,
            "lxc.payload" => true,
            _ => return Scheme::No,
        };
        if !(anchored || strict) {
            return Scheme::No;
        }
        match cx.get(i + 1) {
            Some(n) if valid_name(n) => Scheme::Found(Found::one(2, container(n), Tail::Any)),
            _ if anchored => Scheme::Stop,
            _ => Scheme::No,
        }
    }

    fn leaf<'a>(&self, comp: &'a str) -> Option<Leaf<'a>> {
        if comp.starts_with("lxc.monitor.") {
            return Some(Leaf::Monitor);
        }
        let rest = comp.strip_prefix("lxc.payload.")?;
        let name = rest.split_once('_').map_or(rest, |(_project, name)| name);
        valid_name(name).then(|| Leaf::Element {
            element: container(name),
            suffixed: false,
            sandbox_when_bare: false,
            tail: Tail::Any,
        })
    }
}
