//! Property tests: the parser never panics, and the indexed evaluator decides exactly
//! like the linear reference evaluator.
#![allow(clippy::unwrap_used)]

use callerid::Identity;
use callerid_policy::{Config, Context, Policy};
use proptest::prelude::*;
use serde_json::{Value, json};

const HEX_A: &str = "3f2a9c41d0e1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b";
const HEX_B: &str = "3f2a9c41d0e1ffffd4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b";
const HEX_C: &str = "aaaaaaaaaaaabbbbccccddddeeeeffff00001111222233334444555566667777";

/// TOML fragments a generated policy is built from.
const KEYS: &[(&str, &[&str])] = &[
    ("uid", &["0", "1000", "[0, 1000]", "1001"]),
    ("gid", &["0", "1000", "[5, 1000]"]),
    ("groups", &["27", "[4, 1000]"]),
    (
        "container",
        &[
            "\"3f2a9c41d0e1\"",
            "\"3f2a9c41d0e1ff\"",
            "\"3F2A9C41D0E1B2\"",
            "\"aaaaaaaaaaaa\"",
            "\"web1\"",
            "[\"web1\", \"aaaaaaaaaaaabbbb\"]",
        ],
    ),
    (
        "cgroup",
        &[
            "\"/machine.slice/*\"",
            "\"/machine.slice/a.scope\"",
            "\"/system.slice/**\"",
            "\"/a\"",
            "[\"/a\", \"/b\"]",
            "\"/machine.slice/a*\"",
            "[\"/system.slice/x/*\", \"/a\"]",
        ],
    ),
    ("cgroup_id", &["1", "519", "[2, 519]"]),
    (
        "unit",
        &[
            "\"a.service\"",
            "\"*.scope\"",
            "\"b.service\"",
            "\"a.*\"",
            "[\"a.service\", \"b.service\"]",
        ],
    ),
    ("user_unit", &["\"app.scope\"", "\"*\""]),
    (
        "slice",
        &["\"machine.slice\"", "\"*.slice\"", "\"system.slice\""],
    ),
    (
        "exe",
        &[
            "\"/usr/bin/busybox\"",
            "\"/usr/bin/*\"",
            "\"/bin/sh\"",
            "\"/usr/*/busybox\"",
            "\"/bin/s?\"",
        ],
    ),
    ("pod_uid", &["\"u1\"", "\"u*\"", "[\"u1\", \"u2\"]"]),
    ("qos", &["\"burstable\"", "\"guaranteed\""]),
    (
        "runtime",
        &["\"podman\"", "\"docker\"", "[\"lxc\", \"podman\"]"],
    ),
    ("kind", &["\"container\"", "\"pod\""]),
    ("userns_initial", &["true", "false"]),
    ("userns_uid", &["0", "1000"]),
    ("tenant", &["\"web\"", "\"db\"", "\"w*\""]),
    ("drift", &["true", "false"]),
    ("drift_cgroup", &["true", "false"]),
    (
        "provenance",
        &[
            "{ cgroup = \"kernel_connect\" }",
            "{ cgroup = [\"kernel_now\", \"kernel_connect\"], pidfd = \"so_peerpidfd\" }",
        ],
    ),
];

fn rule_strategy() -> impl Strategy<Value = String> {
    let key = (0..KEYS.len(), 0usize..8).prop_map(|(k, v)| {
        let (name, vals) = KEYS[k];
        (name, vals[v % vals.len()])
    });
    (
        prop::collection::vec(key, 0..4),
        any::<bool>(),
        prop::option::of(prop_oneof![Just("a"), Just("b")]),
    )
        .prop_map(|(keys, allow, listener)| {
            let mut s = format!("action = \"{}\"\n", if allow { "allow" } else { "deny" });
            if let Some(l) = listener {
                s.push_str(&format!("listener = \"{l}\"\n"));
            }
            s.push_str("[rule.match]\n");
            let mut seen = std::collections::HashSet::new();
            for (k, v) in keys {
                if seen.insert(k) {
                    s.push_str(&format!("{k} = {v}\n"));
                }
            }
            s
        })
}

fn policy_strategy() -> impl Strategy<Value = String> {
    (prop::collection::vec(rule_strategy(), 0..60), any::<bool>()).prop_map(|(rules, allow)| {
        let mut s = format!(
            "version = 1\ndefault = \"{}\"\n",
            if allow { "allow" } else { "deny" }
        );
        for (i, r) in rules.iter().enumerate() {
            s.push_str(&format!("[[rule]]\nname = \"r{i}\"\n{r}"));
        }
        s
    })
}

fn opt<T: Clone + std::fmt::Debug + Into<Value>>(
    choices: &'static [Option<T>],
) -> impl Strategy<Value = Value> {
    prop::sample::select(choices).prop_map(|c| c.map_or(Value::Null, Into::into))
}

fn identity_strategy() -> impl Strategy<Value = Identity> {
    (
        (
            prop::sample::select(&[0u32, 1000, 1001, 5][..]),
            prop::sample::select(&[0u32, 1000, 5][..]),
            opt(&[Some("/machine.slice/a.scope"), Some("/machine.slice/a.scope/sub"), Some("/system.slice/x/y"), Some("/a"), None]),
            prop::sample::select(&[1u64, 519, 7][..]),
            any::<bool>(),
        ),
        (
            opt(&[Some(HEX_A), Some(HEX_B), Some(HEX_C), Some("web1"), None]),
            prop::sample::select(&["podman", "docker", "lxc"][..]),
            opt(&[Some("a.service"), Some("x.scope"), Some("b.service"), None]),
            opt(&[Some("machine.slice"), Some("system.slice"), None]),
            opt(&[Some("u1"), Some("u2"), Some("v"), None]),
            any::<bool>(),
        ),
        (
            opt(&[Some("/usr/bin/busybox"), Some("/bin/sh"), None]),
            opt(&[Some(true), Some(false), None]),
            opt(&[Some(0u32), Some(1000u32), None]),
            prop::sample::select(&["none", "null", "cgroup", "euid"][..]),
            opt(&[Some("kernel_connect"), Some("kernel_now"), Some("proc_verified"), None]),
            opt(&[Some("app.scope"), None]),
        ),
    )
        .prop_map(|((uid, gid, cg, cgid, groups), (cid, rt, unit, slice, pod, workload), (exe, init, nsuid, drift, prov, uu))| {
            let container = if cid.is_null() { Value::Null } else { json!({"runtime": rt, "id": cid}) };
            let chain = if cid.is_null() { json!([]) } else { json!([{"kind": "container", "runtime": rt, "id": cid}]) };
            let pod = if pod.is_null() { Value::Null } else { json!({"uid": pod, "qos": "burstable"}) };
            let wl = if workload {
                json!({"container": container, "pod": pod, "chain": chain, "unit": unit, "user_unit": uu, "slice": slice})
            } else {
                Value::Null
            };
            let userns = if init.is_null() {
                Value::Null
            } else {
                json!({"initial": init, "uid_map": [], "gid_map": [], "uid": nsuid, "gid": null})
            };
            let drift = match drift {
                "none" => json!({"cgroup": null, "changed": []}),
                "null" => Value::Null,
                k => json!({"cgroup": null, "changed": [k]}),
            };
            let v = json!({
                "version": 1,
                "peer": {"pid": 1, "uid": uid, "gid": gid, "groups": if groups { json!([27, 1000]) } else { Value::Null },
                         "security_label": null},
                "process": {"pidfs_id": 1, "pid": 1, "ppid": 0, "uid": uid, "euid": uid, "gid": gid, "egid": gid,
                            "comm": "x", "exe": exe, "state": "alive"},
                "cgroup": {"id": cgid, "path": cg, "at": "now"},
                "namespaces": null,
                "user_namespace": userns,
                "workload": wl,
                "drift": drift,
                "provenance": {"peer": "kernel_connect", "process": "kernel_now", "cgroup": prov, "namespaces": null,
                               "user_namespace": null, "workload": null, "pidfd": "so_peerpidfd"},
                "warnings": []
            });
            serde_json::from_value(v).unwrap()
        })
}

fn ctx_strategy() -> impl Strategy<Value = (Option<&'static str>, Option<&'static str>)> {
    (
        prop::option::of(prop_oneof![Just("a"), Just("b"), Just("c")]),
        prop::option::of(prop_oneof![Just("web"), Just("db")]),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The key correctness property of the index: same decision, same rule, as checking
    /// every rule in file order.
    #[test]
    fn indexed_equals_linear(
        text in policy_strategy(),
        ids in prop::collection::vec((identity_strategy(), ctx_strategy()), 1..16),
    ) {
        let policy = Policy::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        for (id, (listener, tenant)) in &ids {
            let ctx = Context { listener: *listener, tenant: *tenant, expect: None };
            prop_assert_eq!(policy.evaluate(id, &ctx), policy.evaluate_linear(id, &ctx), "{}", text);
            let d = policy.decide(id, &ctx);
            let e = policy.explain(id, &ctx);
            prop_assert_eq!(&d, &e.decision);
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(text in ".{0,400}") {
        let _ = Config::parse(&text);
        let _ = Policy::parse(&text);
    }

    /// TOML-shaped input built from the schema's own words, so the parser gets past the
    /// syntax and exercises validation.
    #[test]
    fn parser_never_panics_on_tomlish_text(parts in prop::collection::vec(tomlish_line(), 0..30)) {
        let text = parts.concat();
        if let Err(e) = Config::parse(&text) {
            prop_assert!(e.line >= 1 && e.column >= 1);
            prop_assert!(e.line <= text.lines().count().max(1) + 1, "{} for {:?}", e, text);
        }
    }
}

fn tomlish_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(
        &[
            "version",
            "default",
            "name",
            "action",
            "listener",
            "uid",
            "gid",
            "groups",
            "cgroup",
            "container",
            "runtime",
            "kind",
            "pod_uid",
            "qos",
            "unit",
            "user_unit",
            "slice",
            "exe",
            "userns_initial",
            "userns_uid",
            "tenant",
            "provenance",
            "drift",
            "drift_exe",
            "comm",
            "path",
            "backend",
            "mode",
            "owner",
            "expect",
            "proxy_protocol",
            "max_connections",
            "idle_timeout",
            "decision_timeout",
            "match.uid",
            "bogus",
        ][..],
    );
    let value = prop::sample::select(
        &[
            "1",
            "0",
            "-1",
            "99999999999",
            "\"allow\"",
            "\"deny\"",
            "\"/a/*\"",
            "\"[\"",
            "\"3f2a9c41d0e1\"",
            "\"3f2a\"",
            "[1, 2]",
            "[]",
            "true",
            "\"0660\"",
            "660",
            "\"root:docker\"",
            "\"30s\"",
            "\"5 years\"",
            "{ uid = 1 }",
            "{ cgroup = \"kernel_now\" }",
            "\"podman\"",
            "\"é\"",
            "[\"a\", 1]",
            "1.5",
            "1979-05-27T07:32:00Z",
        ][..],
    );
    prop_oneof![
        3 => (key, value).prop_map(|(k, v)| format!("{k} = {v}\n")),
        1 => prop::sample::select(&["[[rule]]\n", "[rule.match]\n", "[[listener]]\n", "[listener.expect]\n", "[x]\n", "[[rule]\n", "version = 1\n"][..]).prop_map(str::to_owned),
        1 => "[a-z =\"\\[\\]{}0-9.\n]{0,20}",
    ]
}
