//! Machines registered with systemd-machined: systemd-nspawn, rkt, libvirt.
//!
//! - `machine-<name>.scope` (under `machine.slice`), and nspawn started as a service,
//!   `systemd-nspawn@<name>.service`. Names are systemd-escaped: `\x2d` is `-`.
//! - rkt: `machine-rkt\x2d<uuid>.scope/system.slice/<app>.service`: a container, runtime
//!   `rkt`, id the pod uuid.
//! - libvirt: `machine-lxc\x2d<name>.scope` is a libvirt-lxc container (runtime `lxc`);
//!   `machine-qemu\x2d<n>\x2d<name>.scope` is a virtual machine: kind `machine`,
//!   runtime `libvirt`, so it is never reported as a container.
//! - anything else is an nspawn container, runtime `systemd-nspawn`, id the machine
//!   name.
//! - nspawn's `supervisor` sub-cgroup holds nspawn itself, the monitor: not the
//!   container. (`payload` holds the container.)

use super::shape::{cow_strip_prefix, systemd_unescape};
use super::walk::{Cx, Family, Found, Scheme, Tail};
use super::{ChainElement, Kind, Runtime};

pub(crate) struct Machined;

impl Family for Machined {
    fn context_words(&self) -> &'static [&'static str] {
        &["machine"]
    }

    fn scheme<'a>(&self, cx: &Cx<'_, 'a>, i: usize, _anchored: bool) -> Scheme<'a> {
        let c = cx.comps[i];
        let Some(name) = c
            .strip_prefix("machine-")
            .and_then(|n| n.strip_suffix(".scope"))
            .or_else(|| {
                c.strip_prefix("systemd-nspawn@")
                    .and_then(|n| n.strip_suffix(".service"))
            })
        else {
            return Scheme::No;
        };
        if name.is_empty() {
            return Scheme::No;
        }
        if cx.get(i + 1) == Some("supervisor") {
            return Scheme::Stop;
        }
        let name = systemd_unescape(name);
        let (kind, runtime, id) = if let Some(id) = cow_strip_prefix(&name, "rkt-") {
            (Kind::Container, Runtime::Rkt, id)
        } else if let Some(id) = cow_strip_prefix(&name, "lxc-") {
            (Kind::Container, Runtime::Lxc, id)
        } else if let Some(id) = cow_strip_prefix(&name, "qemu-") {
            (Kind::Machine, Runtime::Libvirt, id)
        } else {
            (Kind::Container, Runtime::SystemdNspawn, name)
        };
        if id.is_empty() {
            return Scheme::No;
        }
        Scheme::Found(Found::one(1, ChainElement { kind, runtime, id }, Tail::Any))
    }
}
