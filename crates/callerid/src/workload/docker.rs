//! Docker (moby).
//!
//! - cgroupfs: `/docker/<H64>`; docker-in-docker nests: `/docker/<H64>/docker/<H64>`.
//! - systemd driver: `docker-<H64>.scope`, optionally with an `/init` child.
//! - `--cgroup-parent`: `/<parent>/<H64>`. The path does not name docker, so this is
//!   left to the generic reading (runtime `unknown`), as the corpus labels the
//!   same-shaped `/unrecognized/<H64>`.
//! - Old Debian/GCE: a bare `/<H64>` at the root of every hierarchy.
//! - Docker 1.1's LXC driver: `/lxc/<H64>` (a 64-hex name under `/lxc` is docker's).
//! - Not containers: `docker.service` (the daemon) and
//!   `var-lib-docker-…-<H64>-merged.mount` (a mount unit); neither starts with
//!   `docker-`, so nothing matches them.
//! - `docker` at an anchored position not followed by an id stops the walk
//!   (`/docker/my-task-name/<H64>` is not a docker container).
//!
//! Chain: one container per level, runtime `docker`.

use super::shape::{id64_or_scope, id64_suffixed};
use super::walk::{Cx, Family, Found, Leaf, Scheme, Tail};
use super::{ChainElement, Kind, Runtime};
use std::borrow::Cow;

pub(crate) struct Docker;

fn found(consumed: usize, id: Cow<'_, str>) -> Scheme<'_> {
    Scheme::Found(Found::one(
        consumed,
        ChainElement {
            kind: Kind::Container,
            runtime: Runtime::Docker,
            id,
        },
        Tail::Systemish,
    ))
}

impl Family for Docker {
    fn context_words(&self) -> &'static [&'static str] {
        &["docker"]
    }

    fn scheme<'a>(&self, cx: &Cx<'_, 'a>, i: usize, anchored: bool) -> Scheme<'a> {
        let c = cx.comps[i];
        if c == "docker" || c == "lxc" {
            if let Some(id) = cx.get(i + 1).and_then(id64_or_scope) {
                return found(2, id);
            }
            if c == "docker" && anchored {
                return Scheme::Stop;
            }
            return Scheme::No;
        }
        if cx.at_root(i)
            && let Some(id) = id64_or_scope(c)
        {
            return found(1, id);
        }
        Scheme::No
    }

    fn leaf<'a>(&self, comp: &'a str) -> Option<Leaf<'a>> {
        let rest = comp.strip_prefix("docker-")?;
        let id = id64_suffixed(rest)?;
        Some(Leaf::container(Runtime::Docker, id, rest.len() > 64))
    }
}
