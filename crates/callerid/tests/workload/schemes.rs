//! One case per naming scheme of `shared/corpus/NAMING.md`, including the schemes the
//! public corpus has no case for (LXC/LXD/Incus, nspawn, rkt, libvirt, flatpak, snap,
//! CRI-O sandboxes and monitors, wrappers). Ids here are made up; the layouts are not.

use callerid::workload::{Kind, Qos, Runtime, classify};

const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const G: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const UID: &str = "6fec48c4-1f82-4313-a1c2-29e205a96958";
const UID_: &str = "6fec48c4_1f82_4313_a1c2_29e205a96958";

/// `(kind, runtime, id)` of each chain element, outermost first.
type Chain<'a> = &'a [(Kind, Runtime, &'a str)];

#[track_caller]
fn chain(input: &str, want: Chain<'_>) {
    let w = classify(input);
    let got: Vec<(Kind, Runtime, &str)> = w
        .chain
        .iter()
        .map(|e| (e.kind, e.runtime, e.id.as_ref()))
        .collect();
    assert_eq!(got, want, "input {input:?}");
    let innermost = want.iter().rev().find(|(k, _, _)| *k == Kind::Container);
    assert_eq!(
        w.container.as_ref().map(|c| (c.runtime, c.id.as_ref())),
        innermost.map(|(_, r, id)| (*r, *id)),
        "container of {input:?}"
    );
}

#[track_caller]
fn pod(input: &str, uid: &str, qos: Qos) {
    let w = classify(input);
    let p = w.pod.unwrap_or_else(|| panic!("no pod in {input:?}"));
    assert_eq!((p.uid.as_ref(), p.qos), (uid, qos), "input {input:?}");
}

#[track_caller]
fn units(input: &str, unit: Option<&str>, user_unit: Option<&str>, slice: Option<&str>) {
    let w = classify(input);
    assert_eq!(
        (
            w.unit.as_deref(),
            w.user_unit.as_deref(),
            w.slice.as_deref()
        ),
        (unit, user_unit, slice),
        "input {input:?}"
    );
}

use Kind::{App, Container as C, Machine, Pod, Sandbox};
use Runtime::*;

#[test]
fn docker() {
    chain(&format!("/docker/{H}"), &[(C, Docker, H)]);
    chain(
        &format!("/docker/{G}/docker/{H}"),
        &[(C, Docker, G), (C, Docker, H)],
    );
    chain(&format!("/{H}"), &[(C, Docker, H)]);
    chain(&format!("/lxc/{H}"), &[(C, Docker, H)]);
    chain(
        &format!("/system.slice/docker-{H}.scope/init"),
        &[(C, Docker, H)],
    );
    chain(&format!("/custom-foobar/{H}"), &[(C, Unknown, H)]);
    chain(&format!("/docker/{}", H.to_uppercase()), &[(C, Docker, H)]);
    chain("/system.slice/docker.service", &[]);
    chain(
        &format!("/system.slice/var-lib-docker-overlay2-{H}-merged.mount"),
        &[],
    );
    chain(&format!("/docker/my-task-name/{H}"), &[]);
    chain(&format!("/docker/{H}/not_hex"), &[]);
}

#[test]
fn podman() {
    let r = &[(C, Podman, H)];
    chain(&format!("/machine.slice/libpod-{H}.scope/container"), r);
    chain(
        &format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{H}.scope/container"
        ),
        r,
    );
    chain(&format!("/libpod_parent/libpod-{H}"), r);
    chain(
        &format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod/{H}"),
        r,
    );
    chain(
        &format!("/system.slice/ceph@mon.a.service/libpod-payload-{H}.scope"),
        r,
    );
    chain(&format!("/machine.slice/libpod-conmon-{H}.scope"), &[]);
    units(
        &format!(
            "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{H}.scope/container"
        ),
        Some("user@1000.service"),
        Some(&format!("libpod-{H}.scope")),
        Some("user-1000.slice"),
    );
}

#[test]
fn containerd() {
    chain(&format!("/k8s.io/{H}"), &[(C, Containerd, H)]);
    chain("/default/web", &[(C, Containerd, "web")]);
    chain(
        &format!("/system.slice/nerdctl-{H}.scope"),
        &[(C, Containerd, H)],
    );
    chain(
        &format!(
            "/system.slice/run-containerd-io.containerd.runtime.v2.task-k8s.io-{H}-rootfs.mount"
        ),
        &[],
    );
    chain("/system/runtime", &[]);
    chain("/podruntime/kubelet", &[]);
    chain("/default/web.service", &[]);
    chain("/lxc.pivot/web", &[]);
    chain("/lxc.payload.c1/web", &[(C, Lxc, "c1")]);
    // Not a namespace reading: the first component names a docker container, and a
    // non-unit child below it names nothing.
    chain(&format!("/docker-{H}.scope/web"), &[]);
}

#[test]
fn kubernetes() {
    let pc = |rt, qos: Qos, p: &str| {
        chain(p, &[(Pod, Kubernetes, UID), (C, rt, H)]);
        pod(p, UID, qos);
    };
    pc(
        Kubernetes,
        Qos::Burstable,
        &format!("/kubepods/burstable/pod{UID}/{H}"),
    );
    pc(
        Kubernetes,
        Qos::Guaranteed,
        &format!("/kubepods/pod{UID}/{H}/kube-proxy"),
    );
    pc(
        CriO,
        Qos::Besteffort,
        &format!("/kubepods/besteffort/pod{UID}/crio-{H}"),
    );
    pc(
        Containerd,
        Qos::Besteffort,
        &format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{H}.scope"
        ),
    );
    pc(
        Docker,
        Qos::Guaranteed,
        &format!("/kubepods.slice/kubepods-pod{UID_}.slice/docker-{H}.scope"),
    );
    pc(
        Containerd,
        Qos::Burstable,
        &format!(
            "/system.slice/containerd.service/kubepods-burstable-pod{UID_}.slice:cri-containerd:{H}"
        ),
    );
    pc(
        Kubernetes,
        Qos::Besteffort,
        &format!("/kubepods/kubepods/besteffort/pod{UID}/{H}"),
    );
    pc(
        Containerd,
        Qos::Besteffort,
        &format!(
            "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{UID_}.slice/cri-containerd-{H}.scope"
        ),
    );
    pc(
        Docker,
        Qos::Besteffort,
        &format!("0::/../../kubepods-besteffort-pod{UID_}.slice/docker-{H}.scope"),
    );
    pc(
        Docker,
        Qos::Besteffort,
        &format!("0::../../../kubepods-besteffort-pod{UID_}.slice/docker-{H}.scope"),
    );
    // Static pod: 32-hex uid kept as is.
    chain(
        &format!("/kubepods/burstable/pod2732ca68f6358eba7703fb6f82a25c94/{H}"),
        &[
            (Pod, Kubernetes, "2732ca68f6358eba7703fb6f82a25c94"),
            (C, Kubernetes, H),
        ],
    );
    // kind: the node container, then the pod.
    chain(
        &format!("/docker/{G}/kubelet/kubepods/burstable/pod{UID}/{H}"),
        &[(C, Docker, G), (Pod, Kubernetes, UID), (C, Kubernetes, H)],
    );
    // kind in podman.
    chain(
        &format!(
            "/libpod_parent/libpod-{G}/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{H}.scope"
        ),
        &[(C, Podman, G), (Pod, Kubernetes, UID), (C, Containerd, H)],
    );
    // EKS on Fargate.
    let t = "545b896a072744d186c7fb09a45ec172";
    chain(
        &format!("/ecs/{t}/{t}-3057940393/kubepods/burstable/pod{UID}/{H}"),
        &[
            (Sandbox, Ecs, t),
            (C, Ecs, &format!("{t}-3057940393")),
            (Pod, Kubernetes, UID),
            (C, Kubernetes, H),
        ],
    );
    // A pod cgroup itself, and no pod at all.
    chain(
        &format!("/kubepods/burstable/pod{UID}"),
        &[(Pod, Kubernetes, UID)],
    );
    chain(&format!("/kubepods/{H}"), &[]);
}

#[test]
fn crio_sandbox_and_monitor() {
    let slice =
        format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
    chain(
        &format!("{slice}/crio-{H}.scope"),
        &[(Pod, Kubernetes, UID), (C, CriO, H)],
    );
    chain(
        &format!("{slice}/crio-{H}"),
        &[(Pod, Kubernetes, UID), (Sandbox, CriO, H)],
    );
    chain(
        &format!("{slice}/crio-conmon-{H}.scope"),
        &[(Pod, Kubernetes, UID)],
    );
}

#[test]
fn ecs() {
    let t = "5a0d5ceddf6c44c1928d367a815d890f";
    chain(&format!("/ecs/{t}/{H}"), &[(Sandbox, Ecs, t), (C, Ecs, H)]);
    chain(
        &format!("/ecs/my-cluster/{t}/{H}"),
        &[(Sandbox, Ecs, t), (C, Ecs, H)],
    );
    chain(&format!("/ecs/my-task/{H}"), &[(C, Ecs, H)]);
    chain(
        &format!("/ecs/{UID}/{H}"),
        &[(Sandbox, Ecs, UID), (C, Ecs, H)],
    );
    chain(
        &format!("/ecs/{t}-1234567890"),
        &[(Sandbox, Ecs, t), (C, Ecs, &format!("{t}-1234567890"))],
    );
    chain(
        &format!("/ecs/{t}/{t}-9"),
        &[(Sandbox, Ecs, t), (C, Ecs, &format!("{t}-9"))],
    );
    chain(
        &format!("/ecs/{UID}/{G}/docker/{H}"),
        &[(Sandbox, Ecs, UID), (C, Ecs, G), (C, Docker, H)],
    );
    chain("/ecs/my-task/12345abc", &[]);
    // Only 64-hex ids are lowercased; other shapes keep the path's spelling.
    let up = "34DC0B5E626F2C5C4C5170E34B10E765";
    chain(
        &format!("/ecs/{up}-1234567890"),
        &[(Sandbox, Ecs, up), (C, Ecs, &format!("{up}-1234567890"))],
    );
}

#[test]
fn garden() {
    let id = "6f265890-5165-7fab-6b52-18d1";
    chain(&format!("/garden/{id}"), &[(C, Garden, id)]);
    chain(
        &format!("/system.slice/garden.service/garden/{id}"),
        &[(C, Garden, id)],
    );
    chain(&format!("/garden/{UID}"), &[(C, Garden, UID)]);
    chain("/garden/6f26589-5165-7fab-6b52-18d1", &[]);
}

#[test]
fn lxc() {
    chain("/lxc/web1", &[(C, Lxc, "web1")]);
    chain("/lxc/101/ns/system.slice/sshd.service", &[(C, Lxc, "101")]);
    chain(&format!("/lxc/{UID}"), &[(C, Lxc, UID)]);
    chain(
        "/lxc.payload.web1/system.slice/nginx.service",
        &[(C, Lxc, "web1")],
    );
    chain("/lxc.payload.proj_web1", &[(C, Lxc, "web1")]);
    chain(
        "/lxc.payload.a_b/lxc.payload.c_d/init.scope",
        &[(C, Lxc, "b"), (C, Lxc, "d")],
    );
    chain("/lxc.monitor.web1", &[]);
    chain("/system.slice/lxc/web1", &[]);
}

#[test]
fn machined() {
    chain(
        "/machine.slice/machine-deb\\x2dtest.scope",
        &[(C, SystemdNspawn, "deb-test")],
    );
    chain(
        "/machine.slice/machine-deb.scope/payload/system.slice/cron.service",
        &[(C, SystemdNspawn, "deb")],
    );
    chain(
        "/machine.slice/systemd-nspawn@deb.service/payload",
        &[(C, SystemdNspawn, "deb")],
    );
    chain("/machine.slice/machine-deb.scope/supervisor", &[]);
    chain(
        &format!(
            "/machine.slice/machine-rkt\\x2d{}.scope/system.slice/app.service",
            UID.replace('-', "\\x2d")
        ),
        &[(C, Rkt, UID)],
    );
    chain(
        "/machine.slice/machine-lxc\\x2dweb.scope",
        &[(C, Lxc, "web")],
    );
    chain(
        "/machine.slice/machine-qemu\\x2d1\\x2dvm.scope",
        &[(Machine, Libvirt, "1-vm")],
    );
    units(
        "/machine.slice/machine-deb\\x2dtest.scope",
        Some("machine-deb\\x2dtest.scope"),
        None,
        Some("machine.slice"),
    );
}

#[test]
fn desktop() {
    let app = "/user.slice/user-1000.slice/user@1000.service/app.slice";
    chain(
        &format!("{app}/app-flatpak-org.gnome.Calculator-12345.scope"),
        &[(App, Flatpak, "org.gnome.Calculator")],
    );
    chain(
        &format!("{app}/snap.firefox.firefox-{UID}.scope"),
        &[(App, Snap, "firefox.firefox")],
    );
    chain(
        &format!("{app}/snap.firefox.firefox.{UID}.scope"),
        &[(App, Snap, "firefox.firefox")],
    );
    chain(&format!("{app}/app-gnome-Alacritty-3266.scope"), &[]);
    chain(
        &format!("{app}/app-org.gnome.Terminal.slice/vte-spawn-{UID}.scope"),
        &[],
    );
}

#[test]
fn host_units() {
    units("/init.scope", Some("init.scope"), None, Some("-.slice"));
    units(
        "/system.slice/system-getty.slice/getty@tty1.service",
        Some("getty@tty1.service"),
        None,
        Some("system-getty.slice"),
    );
    units(
        "/user.slice/user-1000.slice/session-3.scope",
        Some("session-3.scope"),
        None,
        Some("user-1000.slice"),
    );
    units(
        "/system.slice/run-r1234abcd.scope",
        Some("run-r1234abcd.scope"),
        None,
        Some("system.slice"),
    );
    chain("/user/1000.user/3.session", &[]);
    chain("/init", &[]);
}

#[test]
fn input_quirks() {
    let line = format!("1:name=systemd:/docker/{H}");
    for input in [
        format!("\u{feff}{line}\n"),
        format!("{line}\r\n"),
        format!("\t  {line}  "),
        format!("{line} (deleted)"),
        format!("12:rdma:/\n{line}"),
        format!("a:cpu:/\n{line}"),
        format!("/docker//{H}"),
    ] {
        chain(&input, &[(C, Docker, H)]);
    }
    // Malformed cgroup lines are not read as paths.
    chain(&format!("a:name=systemd:/docker/{H}"), &[]);
    chain(&format!("13:/docker/{H}"), &[]);
}
