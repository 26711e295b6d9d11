//! Podman (libpod).
//!
//! - systemd manager: `libpod-<H64>.scope` (rootful under `machine.slice`, rootless
//!   under `user@<uid>.service/user.slice`), optionally with crun's `container` child.
//! - cgroupfs manager: `/libpod_parent/libpod-<H64>` (rootful), `…/libpod/<H64>`
//!   (rootless).
//! - `--cgroups=split`: `libpod-payload-<H64>[.scope]` under the calling service.
//! - `libpod-conmon-<H64>.scope` is conmon, the monitor: not the container.
//!
//! Chain: one container, runtime `podman`.

use super::shape::{id64, id64_suffixed};
use super::walk::{Cx, Family, Found, Leaf, Scheme, Tail};
use super::{ChainElement, Kind, Runtime};

pub(crate) struct Podman;

impl Family for Podman {
    fn context_words(&self) -> &'static [&'static str] {
        &["libpod", "libpod_parent"]
    }

    fn scheme<'a>(&self, cx: &Cx<'_, 'a>, i: usize, _anchored: bool) -> Scheme<'a> {
        if cx.comps[i] != "libpod" {
            return Scheme::No;
        }
        match cx.get(i + 1).and_then(id64) {
            Some(id) => Scheme::Found(Found::one(
                2,
                ChainElement {
                    kind: Kind::Container,
                    runtime: Runtime::Podman,
                    id,
                },
                Tail::Systemish,
            )),
            None => Scheme::No,
        }
    }

    fn leaf<'a>(&self, comp: &'a str) -> Option<Leaf<'a>> {
        let rest = comp.strip_prefix("libpod-")?;
        if rest.starts_with("conmon-") {
            return Some(Leaf::Monitor);
        }
        let rest = rest.strip_prefix("payload-").unwrap_or(rest);
        let id = id64_suffixed(rest)?;
        Some(Leaf::container(Runtime::Podman, id, rest.len() > 64))
    }
}
