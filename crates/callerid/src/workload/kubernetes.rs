//! Kubernetes (kubelet) pods, with the cgroupfs and systemd drivers.
//!
//! - cgroupfs: `kubepods[/QOS]/pod<UID>/<leaf>`; systemd:
//!   `kubepods.slice[/kubepods-QOS.slice]/kubepods[-QOS]-pod<UID_>.slice/<leaf>`;
//!   `--cgroup-root` variants (`kubelet-kubepods-…-pod….slice`) and wrappers (Docker
//!   Desktop's `kubepods/kubepods`, kind's `/docker/<node>/…`, EKS Fargate's
//!   `/ecs/…/kubepods/…`) need nothing special: the pod segment is recognised wherever
//!   it is, and what comes before it is the outer part of the chain.
//! - The pod uid may be dashed, underscored (systemd) or 32 hex (static pods); it is
//!   reported dashed and lowercase, 32-hex uids as they are.
//! - QoS comes from the pod slice name or the component before the pod; no QoS segment
//!   means `guaranteed`.
//! - The leaf is asked of every family (`docker-<id>.scope`, `cri-containerd-…`,
//!   `crio-…`); a bare 64-hex leaf does not name its engine and gets runtime
//!   `kubernetes`. CRI-O's `crio-<id>` without `.scope` under a pod slice is the pod
//!   sandbox (kind `sandbox`); a monitor leaf (`crio-conmon-…`) leaves only the pod.
//! - containerd with `SystemdCgroup = false` writes the literal cgroupsPath
//!   `<pod slice>:cri-containerd:<id>` as one component; it is read here as well.
//! - A pod segment outside any `kubepods` context (`/something/pod<UID>/<id>`) counts
//!   only with a container leaf after it; inside kubepods a pod alone is reported.
//! - `kubepods` (or `kubelet`) at an anchored position with no pod below stops the
//!   walk: a bare id directly under kubepods is not a pod's container.
//!
//! Chain: a `pod` element (runtime `kubernetes`, id = the pod uid), then the
//! container (or sandbox).

use super::shape::{id64, is_hex, lower, uuid_canonical};
use super::walk::{Cx, Family, Found, Leaf, Scheme, Tail, memo};
use super::{ChainElement, Kind, Pod, Qos, Runtime};
use std::borrow::Cow;

pub(crate) struct Kubernetes;

/// A pod segment: `pod<uid>` with an optional `…-` prefix and `.slice` suffix.
struct PodSegment<'a> {
    uid: Cow<'a, str>,
    qos: Option<Qos>,
    is_slice: bool,
    kubepods: bool,
}

fn qos_in(name: &str) -> Option<Qos> {
    let name = name.strip_suffix(".slice").unwrap_or(name);
    name.split('-').find_map(|part| match part {
        "besteffort" => Some(Qos::Besteffort),
        "burstable" => Some(Qos::Burstable),
        _ => None,
    })
}

fn pod_segment(c: &str) -> Option<PodSegment<'_>> {
    let (base, is_slice) = match c.strip_suffix(".slice") {
        Some(b) => (b, true),
        None => (c, false),
    };
    for len in [36, 32] {
        let Some(split) = base.len().checked_sub(len) else {
            continue;
        };
        if !base.is_char_boundary(split) {
            continue;
        }
        let (head, uid) = base.split_at(split);
        let Some(prefix) = head.strip_suffix("pod") else {
            continue;
        };
        if !(prefix.is_empty() || prefix.ends_with('-')) {
            continue;
        }
        let uid = if len == 36 {
            uuid_canonical(uid)
        } else {
            is_hex(uid).then(|| lower(uid))
        };
        if let Some(uid) = uid {
            return Some(PodSegment {
                uid,
                qos: qos_in(prefix),
                is_slice,
                kubepods: prefix.contains("kubepods"),
            });
        }
    }
    None
}

/// `<slice>:<engine>:<id>`, containerd's literal systemd-style cgroupsPath.
fn colon_form<'a>(c: &'a str) -> Option<Found<'a>> {
    let mut parts = c.splitn(3, ':');
    let (slice, engine, id) = (parts.next()?, parts.next()?, parts.next()?);
    let runtime = match engine {
        "cri-containerd" => Runtime::Containerd,
        "crio" => Runtime::CriO,
        "docker" => Runtime::Docker,
        _ => return None,
    };
    let id = id64(id)?;
    let seg = pod_segment(slice);
    let pod = seg.map(|s| Pod {
        uid: s.uid,
        qos: s.qos.unwrap_or(Qos::Guaranteed),
    });
    let pod_el = pod.as_ref().map(|p| ChainElement {
        kind: Kind::Pod,
        runtime: Runtime::Kubernetes,
        id: p.uid.clone(),
    });
    Some(Found {
        consumed: 1,
        elements: [
            pod_el,
            Some(ChainElement {
                kind: Kind::Container,
                runtime,
                id,
            }),
        ],
        pod,
        tail: Tail::Any,
    })
}

impl Family for Kubernetes {
    fn context_words(&self) -> &'static [&'static str] {
        &["kubepods", "kubelet"]
    }

    fn scheme<'a>(&self, cx: &Cx<'_, 'a>, i: usize, anchored: bool) -> Scheme<'a> {
        let c = cx.comps[i];
        // `<slice>:<engine>:<64hex>` is longer than 66 bytes: skip the scan for the rest.
        if c.len() > 66 && c.contains(':') {
            return colon_form(c).map_or(Scheme::No, Scheme::Found);
        }
        if let Some(seg) = pod_segment(c) {
            let prev = i.checked_sub(1).and_then(|p| cx.get(p));
            let qos = seg
                .qos
                .or_else(|| prev.and_then(qos_in))
                .unwrap_or(Qos::Guaranteed);
            let first_kubepods = cx.memo(memo::FIRST_KUBEPODS, || {
                cx.comps.iter().position(|p| p.contains("kubepods"))
            });
            let in_kubepods = seg.kubepods || first_kubepods.is_some_and(|k| k < i);
            let pod = Pod { uid: seg.uid, qos };
            let pod_el = ChainElement {
                kind: Kind::Pod,
                runtime: Runtime::Kubernetes,
                id: pod.uid.clone(),
            };
            let inner = match cx.get(i + 1).and_then(super::walk::leaf) {
                Some(Leaf::Element {
                    mut element,
                    suffixed,
                    sandbox_when_bare,
                    ..
                }) => {
                    if element.runtime == Runtime::Unknown {
                        element.runtime = Runtime::Kubernetes;
                    }
                    if sandbox_when_bare && !suffixed && seg.is_slice {
                        element.kind = Kind::Sandbox;
                    }
                    Some((2, Some(element)))
                }
                Some(Leaf::Monitor) => Some((2, None)),
                None if in_kubepods => Some((1, None)),
                None => None,
            };
            return match inner {
                Some((consumed, container)) => Scheme::Found(Found {
                    consumed,
                    elements: [Some(pod_el), container],
                    pod: Some(pod),
                    tail: Tail::Any,
                }),
                None => Scheme::No,
            };
        }
        if anchored && matches!(c, "kubepods" | "kubelet" | "kubepods.slice") {
            let last_pod = cx.memo(memo::LAST_POD, || {
                cx.comps
                    .iter()
                    .rposition(|x| pod_segment(x).is_some() || x.contains(':'))
            });
            if last_pod.is_none_or(|p| p <= i) {
                return Scheme::Stop;
            }
        }
        Scheme::No
    }
}
