//! Pure classifier: cgroup path (or `/proc/<pid>/cgroup` text) → the chain of
//! containers / pods / sandboxes / machines / apps it belongs to, plus the systemd
//! unit, user unit and slice.
//!
//! No I/O, no global state. Strings borrow from the input where they can, so a path
//! that names no workload costs no allocation (paths deeper than 16 components spill
//! their component list to the heap); with a workload, the chain vector, lowercasing an
//! id, undoing systemd's `\x2d` escapes and dashing a pod uid allocate.
//!
//! # Input
//!
//! `/proc/<pid>/cgroup` text (`N:controllers:path` lines, v1 and v2), a bare path, or a
//! list of paths one per line. Tolerated: a UTF-8 BOM, CRLF, indentation and trailing
//! blanks, a missing final newline, ` (deleted)` after a path, doubled slashes, and the
//! leading `..` components of a path read from another cgroup namespace (dropped; the
//! path is then *relative*: its first component is not the hierarchy root). A line
//! that starts like a cgroup line but is malformed (`a:name=systemd:/…`, `13:/…`) and
//! free text with blanks or colons are ignored, never read as a path.
//!
//! # Which line decides
//!
//! - The unified `0::` line decides when it names a workload; but when other lines
//!   name chains that *extend* it (the `0::` chain is a proper prefix of theirs:
//!   EKS-on-Fargate's `0::/ecs/<task>/<id>` next to v1 lines that go on into kubepods;
//!   kind's `0::/docker/<node>/system.slice/containerd.service`), the longest of them
//!   (first among equals) decides: it is the same workload, seen more precisely.
//! - Otherwise the first line in file order that names a workload.
//! - When no line names a workload, unit/user unit/slice come from the `0::` line if it
//!   names a unit, else from the systemd-named (`name=systemd`) line if it does, else
//!   from the first line that does; with no unit anywhere, the slice comes from the
//!   `0::`, systemd-named or first line.
//!
//! # Chain
//!
//! Outermost first; nesting (docker-in-docker, kind, LXD in LXD, ECS task with docker
//! inside) is a chain, and [`Workload::container`] is its innermost element of kind
//! [`Kind::Container`]. Kubernetes contributes a [`Kind::Pod`] element (runtime
//! `kubernetes`, id the pod uid) before the container; CRI-O's pod sandbox is a
//! [`Kind::Sandbox`]; an ECS task is a [`Kind::Sandbox`] (runtime `ecs`) before its
//! containers. System containers (LXC, nspawn, rkt) are containers; virtual machines
//! are [`Kind::Machine`]; flatpak and snap are [`Kind::App`]. Monitors (conmon, the LXC
//! monitor, nspawn's supervisor) are never their container: the walk stops there.
//!
//! # Ids
//!
//! 64-hex ids are compared case-insensitively and reported lowercase. Other shapes
//! count only in their runtime's context and are reported as spelled (ECS Fargate
//! `<32hex>-<digits>`, garden handles, LXC and machine names after systemd
//! unescaping). A 64-hex id in no runtime's context is a container of runtime
//! [`Runtime::Unknown`]; under a Kubernetes pod, of runtime [`Runtime::Kubernetes`].
//! UUIDs in desktop scopes (`vte-spawn-<uuid>.scope`) are never ids.
//!
//! # Runtime families
//!
//! One file per family, each implementing a small internal trait (a multi-component
//! *scheme* and/or a single-component *leaf*), registered in `FAMILIES`; see
//! `walk.rs`. A new runtime is a new file and one registry line.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

mod containerd;
mod crio;
mod desktop;
mod docker;
mod ecs;
mod garden;
mod generic;
mod input;
mod kubernetes;
mod lxc;
mod machined;
mod podman;
mod shape;
mod systemd;
mod walk;

/// Every runtime family, asked in this order at each path component. Order matters
/// only where two families could read the same component: the kubernetes pod segment
/// and the context words with a strict layout (`ecs`, `garden`, `libpod`) come before
/// docker's root-level readings, and the generic 64-hex leaf comes last.
static FAMILIES: &[&dyn walk::Family] = &[
    &kubernetes::Kubernetes,
    &ecs::Ecs,
    &garden::Garden,
    &podman::Podman,
    &containerd::Containerd,
    &docker::Docker,
    &crio::Crio,
    &lxc::Lxc,
    &machined::Machined,
    &desktop::Desktop,
    &generic::Generic,
];

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
    /// A virtual machine registered with systemd-machined (libvirt/qemu). System
    /// containers (LXC, nspawn, rkt) are containers, not machines.
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
    /// A libvirt virtual machine (`machine-qemu…` scopes).
    #[serde(rename = "libvirt")]
    Libvirt,
    /// A 64-hex container id in no runtime's context (`/unrecognized/<id>`, or read
    /// from another cgroup namespace): a container, engine unknown.
    #[serde(rename = "unknown")]
    Unknown,
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

impl Kind {
    /// The JSON name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Pod => "pod",
            Kind::Sandbox => "sandbox",
            Kind::Machine => "machine",
            Kind::App => "app",
        }
    }
}

impl Runtime {
    /// The JSON name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Kubernetes => "kubernetes",
            Runtime::Ecs => "ecs",
            Runtime::Garden => "garden",
            Runtime::Lxc => "lxc",
            Runtime::SystemdNspawn => "systemd-nspawn",
            Runtime::Rkt => "rkt",
            Runtime::Flatpak => "flatpak",
            Runtime::Snap => "snap",
            Runtime::Libvirt => "libvirt",
            Runtime::Unknown => "unknown",
        }
    }
}

impl Qos {
    /// The JSON name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Qos::Guaranteed => "guaranteed",
            Qos::Burstable => "burstable",
            Qos::Besteffort => "besteffort",
        }
    }
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
            container: self.container.map(|c| ContainerRef {
                runtime: c.runtime,
                id: own(c.id),
            }),
            pod: self.pod.map(|p| Pod {
                uid: own(p.uid),
                qos: p.qos,
            }),
            chain: self
                .chain
                .into_iter()
                .map(|e| ChainElement {
                    kind: e.kind,
                    runtime: e.runtime,
                    id: own(e.id),
                })
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
    input::classify(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_json_name() {
        let kinds = [
            Kind::Container,
            Kind::Pod,
            Kind::Sandbox,
            Kind::Machine,
            Kind::App,
        ];
        for k in kinds {
            assert_eq!(serde_json::to_value(k).ok(), Some(k.as_str().into()));
        }
        let runtimes = [
            Runtime::Docker,
            Runtime::Podman,
            Runtime::Containerd,
            Runtime::CriO,
            Runtime::Kubernetes,
            Runtime::Ecs,
            Runtime::Garden,
            Runtime::Lxc,
            Runtime::SystemdNspawn,
            Runtime::Rkt,
            Runtime::Flatpak,
            Runtime::Snap,
            Runtime::Libvirt,
            Runtime::Unknown,
        ];
        for r in runtimes {
            assert_eq!(serde_json::to_value(r).ok(), Some(r.as_str().into()));
        }
        for q in [Qos::Guaranteed, Qos::Burstable, Qos::Besteffort] {
            assert_eq!(serde_json::to_value(q).ok(), Some(q.as_str().into()));
        }
    }
}
