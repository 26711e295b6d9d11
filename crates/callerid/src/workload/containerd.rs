//! containerd standalone, nerdctl, and the CRI plugin's systemd scopes.
//!
//! - CRI with the systemd driver: `cri-containerd-<H64>.scope` (usually under a
//!   Kubernetes pod slice; the kubernetes family adds the pod).
//! - nerdctl with systemd: `nerdctl-<H64>.scope`.
//! - cgroupfs: `/<namespace>/<id>` at the root of the hierarchy, exactly two
//!   components. The id may be any name containerd accepts (`/default/a`), as falco
//!   reads it; the namespace must be a valid containerd namespace and not a word
//!   another family declares as its context (`docker`, `ecs`, `kubepods`, …) or the
//!   host owns (Talos' `system` and `podruntime`, …), and neither part may look like
//!   a systemd unit. A 64-hex id
//!   under a namespace that is not a well-known containerd one (`default`, `k8s.io`,
//!   `moby`, `buildkit`, `services.linuxkit`) is left to docker's `--cgroup-parent`
//!   reading.
//! - `run-containerd-…-rootfs.mount` is a mount unit, not a container (it does not
//!   start with a runtime prefix, so nothing matches it).
//!
//! Chain: one container, runtime `containerd`.

use super::shape::{id64, id64_suffixed, is_containerd_name};
use super::systemd::has_unit_suffix;
use super::walk::{Cx, Family, Found, Leaf, Scheme, Tail, is_context_word};
use super::{ChainElement, Kind, Runtime};
use std::borrow::Cow;

pub(crate) struct Containerd;

const WELL_KNOWN_NAMESPACES: &[&str] =
    &["default", "k8s.io", "moby", "buildkit", "services.linuxkit"];

/// First components that belong to the host (Talos' `system` and `podruntime`,
/// cgmanager's `user`, `init`); other families declare their own context words.
const HOST_WORDS: &[&str] = &["system", "podruntime", "user", "init", "pod", "kuberuntime"];

impl Family for Containerd {
    fn scheme<'a>(&self, cx: &Cx<'_, 'a>, i: usize, _anchored: bool) -> Scheme<'a> {
        if !cx.at_root(i) || cx.comps.len() != 2 {
            return Scheme::No;
        }
        let (ns, name) = (cx.comps[0], cx.comps[1]);
        let id = if let Some(id) = id64(name) {
            if !WELL_KNOWN_NAMESPACES.contains(&ns) {
                return Scheme::No;
            }
            id
        } else {
            if HOST_WORDS.contains(&ns)
                || is_context_word(ns)
                || super::walk::leaf(ns).is_some()
                || has_unit_suffix(ns)
                || has_unit_suffix(name)
                || !is_containerd_name(ns)
                || !is_containerd_name(name)
            {
                return Scheme::No;
            }
            Cow::Borrowed(name)
        };
        Scheme::Found(Found::one(
            2,
            ChainElement {
                kind: Kind::Container,
                runtime: Runtime::Containerd,
                id,
            },
            Tail::Systemish,
        ))
    }

    fn leaf<'a>(&self, comp: &'a str) -> Option<Leaf<'a>> {
        let rest = comp
            .strip_prefix("cri-containerd-")
            .or_else(|| comp.strip_prefix("nerdctl-"))?;
        let id = id64_suffixed(rest)?;
        Some(Leaf::container(Runtime::Containerd, id, rest.len() > 64))
    }
}
