//! Property tests of the workload classifier.

use callerid::workload::{Workload, classify};
use proptest::prelude::*;

const H1: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const H2: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const H1_UPPER: &str = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";

/// Components real paths are made of, with ids in every runtime's shape.
fn tokens() -> Vec<String> {
    let uid = "2d3da189-6407-48e3-9ab6-78188d75e609";
    let uid_ = uid.replace('-', "_");
    let t32 = "5a0d5ceddf6c44c1928d367a815d890f";
    [
        "system.slice",
        "user.slice",
        "user-1000.slice",
        "user@1000.service",
        "machine.slice",
        "kubepods",
        "kubepods.slice",
        "kubelet",
        "burstable",
        "besteffort",
        "kubepods-burstable.slice",
        &format!("pod{uid}"),
        &format!("kubepods-besteffort-pod{uid_}.slice"),
        &format!("pod{t32}"),
        H1,
        H2,
        H1_UPPER,
        &format!("docker-{H1}.scope"),
        &format!("docker-{H2}"),
        "docker",
        "ecs",
        t32,
        &format!("{t32}-1234567890"),
        "garden",
        "6f265890-5165-7fab-6b52-18d1",
        "lxc",
        "lxc.payload",
        "lxc.payload.proj_c1",
        "lxc.monitor.c1",
        "machine-foo\\x2dbar.scope",
        "machine-rkt\\x2d6f265890\\x2d5165\\x2d7fab\\x2d6b52\\x2d18d1abcdabcd.scope",
        "machine-qemu\\x2d1\\x2dvm.scope",
        "systemd-nspawn@deb.service",
        &format!("libpod-{H1}.scope"),
        &format!("libpod-conmon-{H2}.scope"),
        &format!("libpod-payload-{H2}"),
        &format!("crio-{H1}"),
        &format!("crio-conmon-{H1}.scope"),
        &format!("cri-containerd-{H2}.scope"),
        &format!("nerdctl-{H1}"),
        "libpod",
        "libpod_parent",
        "..",
        ".",
        "init",
        "container",
        "supervisor",
        "payload",
        "ns",
        "app-flatpak-org.gnome.Foo-12.scope",
        "snap.a.b-6fec48c4-1f82-4313-a1c2-29e205a96958.scope",
        "session-2.scope",
        "foo.service",
        "_cpu.service",
        "getty@tty1.service",
        "vte-spawn-6fec48c4-1f82-4313-a1c2-29e205a96958.scope",
        &format!("kubepods-pod{uid_}.slice:cri-containerd:{H1}"),
        "x:y:z",
        "default",
        "k8s.io",
        "a",
        "",
        "\u{e9}t\u{e9}",
        " ",
        "not_hex",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A path made of real-world components (and some junk), starting with `/`.
fn path() -> impl Strategy<Value = String> {
    let tok = prop::sample::select(tokens());
    let junk = "[a-zA-Z0-9_.@:\\\\-]{0,12}";
    prop::collection::vec(prop_oneof![4 => tok, 1 => junk], 0..9)
        .prop_map(|v| format!("/{}", v.join("/")))
}

/// Undo what the classifier may undo: case, systemd `\xNN` escapes, `_` for `-`.
fn normalise(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(v) = s
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out)
        .to_lowercase()
        .replace('_', "-")
}

fn ids_occur(input: &str, w: &Workload<'_>) -> Result<(), TestCaseError> {
    let hay = normalise(input);
    for e in &w.chain {
        prop_assert!(
            hay.contains(&normalise(&e.id)),
            "chain id {:?} not in {input:?}",
            e.id
        );
    }
    if let Some(c) = &w.container {
        prop_assert!(
            w.chain
                .iter()
                .any(|e| e.id == c.id && e.runtime == c.runtime)
        );
    }
    if let Some(p) = &w.pod {
        prop_assert!(hay.contains(&normalise(&p.uid)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any text at all: no panic, and every reported id comes from the input.
    #[test]
    fn never_panics_on_arbitrary_text(s in any::<String>()) {
        let w = classify(&s);
        ids_occur(&s, &w)?;
    }

    /// Cgroup-file-shaped text made of real components in random order.
    #[test]
    fn never_panics_on_cgroup_shaped_text(
        lines in prop::collection::vec((0u8..14, "[a-z_=,]{0,12}", path()), 0..6),
        crlf in any::<bool>(),
        bom in any::<bool>(),
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = if bom { "\u{feff}".to_owned() } else { String::new() };
        for (h, ctl, p) in &lines {
            text.push_str(&format!("{h}:{ctl}:{p}{nl}"));
        }
        let w = classify(&text);
        ids_occur(&text, &w)?;
    }

    /// A bare path and the same path as the unified line of a cgroup file agree.
    #[test]
    fn bare_path_equals_unified_line(p in path()) {
        let line = format!("0::{p}");
        prop_assert_eq!(classify(&p), classify(&line));
    }

    /// Reported ids occur in the input (modulo case, `\xNN` escapes and `_`/`-`).
    #[test]
    fn ids_come_from_the_input(p in path()) {
        ids_occur(&p, &classify(&p))?;
    }

    /// v1 lines, in any order and on any side of a decisive `0::` line, do not change
    /// the answer (they name other workloads or none, never an extension of it).
    #[test]
    fn v1_order_around_decisive_v2_line_is_irrelevant(
        v2 in prop::sample::select(vec![
            format!("/system.slice/docker-{H1}.scope"),
            format!("/machine.slice/libpod-{H1}.scope/container"),
            format!("/kubepods.slice/kubepods-pod2d3da189_6407_48e3_9ab6_78188d75e609.slice/cri-containerd-{H1}.scope"),
            format!("/docker/{H1}"),
            "/ecs/5a0d5ceddf6c44c1928d367a815d890f/5a0d5ceddf6c44c1928d367a815d890f-1".to_owned(),
            "/lxc.payload.c1".to_owned(),
        ]),
        v1 in prop::collection::vec(prop::sample::select(vec![
            "/".to_owned(),
            "/user.slice/user-1000.slice/session-2.scope".to_owned(),
            format!("/docker/{H2}"),
            format!("/kubepods/besteffort/pod11111111-2222-3333-4444-555555555555/{H2}"),
            "/system.slice/crio.service".to_owned(),
            format!("/system.slice/docker-{H2}.scope"),
        ]), 0..8),
        at in any::<prop::sample::Index>(),
        ctl in prop::sample::select(vec!["cpu", "name=systemd", "memory,pids", "rdma"]),
    ) {
        let mut lines: Vec<String> = v1.iter().enumerate().map(|(i, p)| format!("{}:{ctl}:{p}", i + 1)).collect();
        lines.insert(at.index(lines.len() + 1), format!("0::{v2}"));
        let text = lines.join("\n");
        let want = classify(&v2);
        prop_assert!(!want.chain.is_empty());
        prop_assert_eq!(classify(&text), want.clone());
        lines.reverse();
        let reversed = lines.join("\n");
        prop_assert_eq!(classify(&reversed), want);
    }
}
