//! CRI-O: `crio-<H64>.scope` is a container; `crio-<H64>` without `.scope` directly
//! under a Kubernetes pod slice is the pod sandbox (decided by the kubernetes family,
//! which knows it is under a pod slice); with the cgroupfs driver (`…/pod<UID>/crio-<H64>`)
//! it is a container. `crio-conmon-<H64>[.scope]` is conmon, the monitor: not the
//! container. Chain: one container (or sandbox), runtime `cri-o`.

use super::shape::id64_suffixed;
use super::walk::{Family, Leaf, Tail};
use super::{ChainElement, Kind, Runtime};

pub(crate) struct Crio;

impl Family for Crio {
    fn leaf<'a>(&self, comp: &'a str) -> Option<Leaf<'a>> {
        let rest = comp.strip_prefix("crio-")?;
        if rest.starts_with("conmon-") {
            return Some(Leaf::Monitor);
        }
        let id = id64_suffixed(rest)?;
        Some(Leaf::Element {
            element: ChainElement {
                kind: Kind::Container,
                runtime: Runtime::CriO,
                id,
            },
            suffixed: rest.len() > 64,
            sandbox_when_bare: true,
            tail: Tail::Systemish,
        })
    }
}
