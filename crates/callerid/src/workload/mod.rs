//! Pure classifier: cgroup path (or `/proc/<pid>/cgroup` text) → the chain of
//! containers / pods / sandboxes / machines / apps it belongs to, plus the systemd
//! unit, user unit and slice.
//!
//! No I/O, no global state. Strings borrow from the input where they can, so a path
//! that names no workload costs no allocation.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// What kind of thing a chain element is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A container.
    Container,
    /// A Kubernetes pod.
    Pod,
    /// A pod sandbox (pause container) or an ECS task.
    Sandbox,
    /// A machine registered with systemd-machined, or a system container (LXC).
    Machine,
    /// A desktop sandbox (flatpak, snap).
    App,
}

/// The engine or system a chain element belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Runtime {
    /// Docker (moby).
    #[serde(rename = "docker")]
    Docker,
    /// Podman (libpod).
    #[serde(rename = "podman")]
    Podman,
    /// containerd, standalone or through nerdctl / CRI.
    #[serde(rename = "containerd")]
    Containerd,
    /// CRI-O.
    #[serde(rename = "cri-o")]
    CriO,
    /// A kubepods path whose engine the path does not name.
    #[serde(rename = "kubernetes")]
    Kubernetes,
    /// Amazon ECS (EC2 and Fargate launch types).
    #[serde(rename = "ecs")]
    Ecs,
    /// Cloud Foundry garden.
    #[serde(rename = "garden")]
    Garden,
    /// LXC, LXD, Incus.
    #[serde(rename = "lxc")]
    Lxc,
    /// systemd-nspawn or another machined-registered machine.
    #[serde(rename = "systemd-nspawn")]
    SystemdNspawn,
    /// rkt.
    #[serde(rename = "rkt")]
    Rkt,
    /// Flatpak.
    #[serde(rename = "flatpak")]
    Flatpak,
    /// Snap.
    #[serde(rename = "snap")]
    Snap,
}

/// Kubernetes QoS class of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Qos {
    /// No QoS segment in the path.
    Guaranteed,
    /// `burstable`.
    Burstable,
    /// `besteffort`.
    Besteffort,
}

/// The innermost container of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerRef<'a> {
    /// Engine.
    pub runtime: Runtime,
    /// Full id (64 lowercase hex for most engines; the runtime's own shape otherwise).
    pub id: Cow<'a, str>,
}

/// A Kubernetes pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pod<'a> {
    /// Pod uid, dashed (`_` from the systemd driver becomes `-`).
    pub uid: Cow<'a, str>,
    /// QoS class.
    pub qos: Qos,
}

/// One element of the nesting chain, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainElement<'a> {
    /// What it is.
    pub kind: Kind,
    /// Which engine or system.
    pub runtime: Runtime,
    /// Its id or name in that runtime.
    pub id: Cow<'a, str>,
}

/// The result of classification (the `workload` object of DESIGN.md §2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload<'a> {
    /// Innermost container of the chain, if any.
    pub container: Option<ContainerRef<'a>>,
    /// The Kubernetes pod, if any.
    pub pod: Option<Pod<'a>>,
    /// Everything the path belongs to, outermost first.
    pub chain: Vec<ChainElement<'a>>,
    /// systemd unit (`cg_path_get_unit`).
    pub unit: Option<Cow<'a, str>>,
    /// systemd user unit (`cg_path_get_user_unit`).
    pub user_unit: Option<Cow<'a, str>>,
    /// systemd slice (`cg_path_get_slice`).
    pub slice: Option<Cow<'a, str>>,
}

impl Workload<'_> {
    /// Copies borrowed strings so the result outlives the input.
    pub fn into_owned(self) -> Workload<'static> {
        fn own(c: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(c.into_owned())
        }
        Workload {
            container: self.container.map(|c| ContainerRef { runtime: c.runtime, id: own(c.id) }),
            pod: self.pod.map(|p| Pod { uid: own(p.uid), qos: p.qos }),
            chain: self
                .chain
                .into_iter()
                .map(|e| ChainElement { kind: e.kind, runtime: e.runtime, id: own(e.id) })
                .collect(),
            unit: self.unit.map(own),
            user_unit: self.user_unit.map(own),
            slice: self.slice.map(own),
        }
    }
}

/// Classifies `/proc/<pid>/cgroup` text or a bare cgroup path.
///
/// Never fails: input that names nothing gives an empty [`Workload`].
pub fn classify(input: &str) -> Workload<'_> {
    let _ = input;
    Workload::default()
}
