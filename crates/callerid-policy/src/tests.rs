//! Allow/deny matrix and strictness tests over the public API.

use crate::testutil::{HEX, ident};
use crate::*;
use serde_json::json;

fn policy(text: &str) -> Policy {
    match Policy::parse(text) {
        Ok(p) => p,
        Err(e) => panic!("policy should parse: {e}\n{text}"),
    }
}

/// One allow rule with `match_toml` as its match table, default deny.
fn one_rule(match_toml: &str) -> Policy {
    policy(&format!(
        "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\n[rule.match]\n{match_toml}\n"
    ))
}

fn allows(p: &Policy, id: &callerid::Identity) -> bool {
    let ctx = Context::default();
    let d = p.decide(id, &ctx);
    assert_eq!(
        d.allow,
        p.evaluate_linear(id, &ctx).allow,
        "indexed and linear disagree"
    );
    d.allow
}

fn err(text: &str) -> ConfigError {
    match Config::parse(text) {
        Ok(_) => panic!("should be rejected:\n{text}"),
        Err(e) => e,
    }
}

/// (match table, identity patch, expected allow)
fn matrix() -> Vec<(&'static str, serde_json::Value, bool)> {
    let none = json!({});
    vec![
        ("uid = 1000", none.clone(), true),
        ("uid = [0, 1000]", none.clone(), true),
        ("uid = 0", none.clone(), false),
        ("gid = 1000", none.clone(), true),
        ("gid = [5]", none.clone(), false),
        ("groups = 27", none.clone(), true),
        ("groups = [4, 5]", none.clone(), false),
        ("groups = 27", json!({"peer": {"groups": null}}), false),
        ("cgroup = \"/machine.slice/*\"", none.clone(), true),
        ("cgroup = \"/system.slice/*\"", none.clone(), false),
        // `*` does not cross `/`; `**` does
        (
            "cgroup = \"/machine.slice/*\"",
            json!({"cgroup": {"path": "/machine.slice/a.scope/sub"}}),
            false,
        ),
        (
            "cgroup = \"/machine.slice/**\"",
            json!({"cgroup": {"path": "/machine.slice/a.scope/sub"}}),
            true,
        ),
        (
            "cgroup = \"/machine.slice/*\"",
            json!({"cgroup": {"path": null}}),
            false,
        ),
        (
            "cgroup = \"/machine.slice/*\"",
            json!({"cgroup": null}),
            false,
        ),
        // backslash is literal
        (
            r#"cgroup = '/machine.slice/machine-qemu\x2d1.scope'"#,
            json!({"cgroup": {"path": r"/machine.slice/machine-qemu\x2d1.scope"}}),
            true,
        ),
        ("cgroup_id = 519", none.clone(), true),
        ("cgroup_id = [1, 2]", none.clone(), false),
        ("container = \"3f2a9c41d0e1\"", none.clone(), true),
        ("container = \"3F2A9C41D0E1B2\"", none.clone(), true),
        ("container = \"3f2a9c41d0e2\"", none.clone(), false),
        (
            "container = \"3f2a9c41d0e1\"",
            json!({"workload": {"container": null}}),
            false,
        ),
        (
            "container = \"3f2a9c41d0e1\"",
            json!({"workload": null}),
            false,
        ),
        (
            "container = \"web1\"",
            json!({"workload": {"container": {"runtime": "lxc", "id": "web1"}}}),
            true,
        ),
        (
            "container = \"web1\"",
            json!({"workload": {"container": {"runtime": "lxc", "id": "web12"}}}),
            false,
        ),
        ("runtime = \"podman\"", none.clone(), true),
        ("runtime = [\"docker\", \"cri-o\"]", none.clone(), false),
        ("kind = \"container\"", none.clone(), true),
        ("kind = \"pod\"", none.clone(), false),
        (
            "runtime = \"podman\"",
            json!({"workload": {"chain": []}}),
            false,
        ),
        (
            "pod_uid = \"1234*\"",
            json!({"workload": {"pod": {"uid": "12345678-aaaa", "qos": "burstable"}}}),
            true,
        ),
        (
            "pod_uid = \"9*\"",
            json!({"workload": {"pod": {"uid": "12345678-aaaa", "qos": "burstable"}}}),
            false,
        ),
        ("pod_uid = \"*\"", none.clone(), false),
        (
            "qos = \"burstable\"",
            json!({"workload": {"pod": {"uid": "u", "qos": "burstable"}}}),
            true,
        ),
        (
            "qos = [\"guaranteed\"]",
            json!({"workload": {"pod": {"uid": "u", "qos": "burstable"}}}),
            false,
        ),
        ("unit = \"libpod-*.scope\"", none.clone(), true),
        ("unit = \"sshd.service\"", none.clone(), false),
        ("user_unit = \"*\"", none.clone(), false),
        (
            "user_unit = \"app-*.scope\"",
            json!({"workload": {"user_unit": "app-foo.scope"}}),
            true,
        ),
        ("slice = \"machine.slice\"", none.clone(), true),
        ("exe = \"/usr/bin/*\"", none.clone(), true),
        ("exe = \"/usr/*\"", none.clone(), false),
        (
            "exe = \"/usr/bin/busybox\"",
            json!({"process": null}),
            false,
        ),
        ("security_label = \"*\"", none.clone(), false),
        (
            "security_label = \"unconfined\"",
            json!({"peer": {"security_label": "unconfined"}}),
            true,
        ),
        ("userns_initial = false", none.clone(), true),
        ("userns_initial = true", none.clone(), false),
        (
            "userns_initial = false",
            json!({"user_namespace": null}),
            false,
        ),
        ("userns_uid = 0", none.clone(), true),
        ("userns_uid = 1000", none.clone(), false),
        ("userns_gid = 0", none.clone(), true),
        (
            "provenance = { cgroup = [\"kernel_connect\", \"kernel_now\"] }",
            none.clone(),
            true,
        ),
        (
            "provenance = { cgroup = \"kernel_connect\" }",
            json!({"provenance": {"cgroup": "proc_verified"}}),
            false,
        ),
        (
            "provenance = { cgroup = \"kernel_connect\" }",
            json!({"provenance": {"cgroup": null}}),
            false,
        ),
        (
            "provenance = { workload = \"cgroup_path\", pidfd = \"so_peerpidfd\" }",
            none.clone(),
            true,
        ),
        (
            "provenance = { pidfd = \"so_peerpidfd\" }",
            json!({"provenance": {"pidfd": "pidfd_open"}}),
            false,
        ),
        ("drift = false", none.clone(), true),
        ("drift = true", none.clone(), false),
        ("drift = false", json!({"drift": null}), false),
        ("drift = true", json!({"drift": null}), false),
        (
            "drift = true",
            json!({"drift": {"cgroup": {"id": 7, "path": "/b"}, "changed": ["cgroup"]}}),
            true,
        ),
        (
            "drift_cgroup = true",
            json!({"drift": {"cgroup": {"id": 7, "path": "/b"}, "changed": ["cgroup"]}}),
            true,
        ),
        (
            "drift_cgroup = false",
            json!({"drift": {"cgroup": {"id": 7, "path": "/b"}, "changed": ["cgroup"]}}),
            false,
        ),
        (
            "drift_euid = false",
            json!({"drift": {"cgroup": {"id": 7, "path": "/b"}, "changed": ["cgroup"]}}),
            true,
        ),
        (
            "drift_euid = true",
            json!({"drift": {"cgroup": null, "changed": ["euid", "exe"]}}),
            true,
        ),
        (
            "drift_exe = false",
            json!({"drift": {"cgroup": null, "changed": ["euid", "exe"]}}),
            false,
        ),
        (
            "drift_egid = false",
            json!({"drift": {"cgroup": null, "changed": ["euid", "exe"]}}),
            true,
        ),
        // all keys must match
        (
            "uid = 1000\nruntime = \"podman\"\ncontainer = \"3f2a9c41d0e1\"",
            none.clone(),
            true,
        ),
        ("uid = 1000\nruntime = \"docker\"", none.clone(), false),
        // an empty match table matches everyone
        ("", none, true),
    ]
}

#[test]
fn allow_deny_matrix() {
    for (m, patch, want) in matrix() {
        let p = one_rule(m);
        let id = ident(patch.clone());
        assert_eq!(allows(&p, &id), want, "match {{{m}}} on {patch}");
        // The same condition as a deny rule under default allow flips only when it matches.
        let text = format!(
            "version = 1\ndefault = \"allow\"\n[[rule]]\nname = \"r\"\naction = \"deny\"\n[rule.match]\n{m}\n"
        );
        assert_eq!(
            allows(&policy(&text), &id),
            !want,
            "deny rule {{{m}}} on {patch}"
        );
    }
}

#[test]
fn first_match_in_file_order_wins() {
    let p = policy(
        r#"version = 1
default = "allow"
[[rule]]
name = "deny podman"
action = "deny"
match.runtime = "podman"
[[rule]]
name = "allow 1000"
action = "allow"
match.uid = 1000
"#,
    );
    let d = p.decide(&ident(json!({})), &Context::default());
    assert!(!d.allow);
    assert_eq!(d.rule.as_deref(), Some("deny podman"));
    let d = p.decide(&ident(json!({"workload": null})), &Context::default());
    assert_eq!((d.allow, d.rule.as_deref()), (true, Some("allow 1000")));
    let d = p.decide(
        &ident(json!({"workload": null, "peer": {"uid": 5}})),
        &Context::default(),
    );
    assert_eq!((d.allow, d.rule), (true, None));
    assert_eq!(d.reasons, ["no rule matched; default is allow"]);
}

#[test]
fn default_is_deny_when_absent() {
    let p = policy("version = 1\n");
    assert_eq!(p.default_action(), Action::Deny);
    assert!(!p.decide(&ident(json!({})), &Context::default()).allow);
}

#[test]
fn allow_all_is_the_embedded_toml() {
    let id = ident(json!({}));
    let a = Policy::allow_all().decide(&id, &Context::default());
    let b = policy(ALLOW_ALL_TOML).decide(&id, &Context::default());
    assert_eq!(a, b);
    assert!(a.allow);
    assert_eq!(
        Policy::allow_all().required_parts(),
        RequiredParts::default()
    );
}

#[test]
fn unidentified_always_denies() {
    let p = Policy::allow_all();
    let d = p.decide_result(
        Err::<&callerid::Identity, _>("peer gone"),
        &Context::default(),
    );
    assert_eq!(
        d,
        Decision {
            allow: false,
            rule: None,
            reasons: vec!["identification failed: peer gone".into()]
        }
    );
}

#[test]
fn decision_serialises_to_the_contract() {
    let d = Decision {
        allow: true,
        rule: Some("r".into()),
        reasons: vec!["x".into()],
    };
    assert_eq!(
        serde_json::to_string(&d).unwrap(),
        r#"{"allow":true,"rule":"r","reasons":["x"]}"#
    );
    let d = Decision::unidentified(&"e");
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        json!({"allow": false, "rule": null, "reasons": ["identification failed: e"]})
    );
}

const GATE: &str = r#"
version = 1
default = "deny"

[[listener]]
name = "docker-api"
path = "/run/callerid/docker.sock"
backend = "/run/docker.sock"
mode = "0660"
owner = "root:docker"
tenant = "web"
expect = { runtime = "podman" }
proxy_protocol = true
max_connections = 100
max_per_identity = 4
idle_timeout = "30s"
decision_timeout = 2

[[listener]]
name = "plain"
path = "/run/callerid/plain.sock"
backend = "/run/plain.sock"

[[rule]]
name = "web tenant"
action = "allow"
listener = "docker-api"
[rule.match]
tenant = "web"
uid = 1000

[[rule]]
name = "plain uid 0"
action = "allow"
listener = "plain"
match.uid = 0
"#;

#[test]
fn gate_config_parses_listeners() {
    let c = Config::parse(GATE).unwrap();
    assert_eq!(c.listeners.len(), 2);
    let l = &c.listeners[0];
    assert_eq!(l.name, "docker-api");
    assert_eq!(l.mode, Some(0o660));
    assert_eq!(
        l.owner,
        Some(Owner {
            user: Some(Principal::Name("root".into())),
            group: Some(Principal::Name("docker".into()))
        })
    );
    assert_eq!(l.tenant.as_deref(), Some("web"));
    assert!(l.proxy_protocol);
    assert_eq!(l.max_connections.map(|n| n.get()), Some(100));
    assert_eq!(l.max_per_identity.map(|n| n.get()), Some(4));
    assert_eq!(l.idle_timeout, Some(std::time::Duration::from_secs(30)));
    assert_eq!(l.decision_timeout, std::time::Duration::from_secs(2));
    assert_eq!(l.line, 6);
    let p = &c.listeners[1];
    assert_eq!(
        (p.mode, p.proxy_protocol, p.idle_timeout),
        (None, false, None)
    );
    assert_eq!(p.decision_timeout, DEFAULT_DECISION_TIMEOUT);
    assert!(c.required_parts().workload, "expect uses runtime");
}

#[test]
fn listener_tenant_and_expect() {
    let c = Config::parse(GATE).unwrap();
    let docker = c.listener("docker-api").unwrap().context();
    let plain = c.listener("plain").unwrap().context();
    let id = ident(json!({}));
    let d = c.policy.decide(&id, &docker);
    assert_eq!((d.allow, d.rule.as_deref()), (true, Some("web tenant")));
    // rule for another listener does not apply
    assert!(!c.policy.decide(&id, &plain).allow);
    let root = ident(json!({"peer": {"uid": 0}}));
    assert_eq!(
        c.policy.decide(&root, &plain).rule.as_deref(),
        Some("plain uid 0")
    );
    // expect mismatch denies even when a rule would allow
    let docker_peer = ident(
        json!({"workload": {"chain": [{"kind": "container", "runtime": "docker", "id": HEX}]}}),
    );
    let d = c.policy.decide(&docker_peer, &docker);
    assert!(!d.allow);
    assert_eq!(d.rule, None);
    assert_eq!(d.reasons[0], "listener \"docker-api\" expect not satisfied");
    assert!(
        d.reasons[1].starts_with("runtime: docker does not match [podman]"),
        "{:?}",
        d.reasons
    );
    assert_eq!(
        c.policy.evaluate(&docker_peer, &docker).by,
        DecidedBy::Expect
    );
    // tenant key without a listener tenant never matches
    let no_tenant = Context {
        listener: Some("docker-api"),
        tenant: None,
        expect: None,
    };
    assert!(!c.policy.decide(&id, &no_tenant).allow);
    // a listener-bound rule never applies under serve
    assert!(!c.policy.decide(&root, &Context::default()).allow);
}

#[test]
fn explain_lists_every_rule_and_key() {
    let c = Config::parse(GATE).unwrap();
    let id = ident(json!({}));
    let ctx = c.listener("docker-api").unwrap().context();
    let e = c.policy.explain(&id, &ctx);
    assert_eq!(e.decision, c.policy.decide(&id, &ctx));
    assert_eq!(e.rules.len(), 2);
    assert_eq!(e.rules[0].status, RuleStatus::Decisive);
    assert_eq!(
        e.rules[0]
            .checks
            .iter()
            .map(|c| c.key.as_str())
            .collect::<Vec<_>>(),
        ["listener", "uid", "tenant"]
    );
    assert!(e.rules[0].checks.iter().all(|c| c.matched));
    assert_eq!(e.rules[1].status, RuleStatus::NotMatched);
    assert!(!e.rules[1].checks[0].matched);
    assert_eq!(e.rules[1].checks[1].detail, "1000 does not match [0]");
    assert!(e.expect.as_ref().unwrap()[0].matched);
    let text = e.to_string();
    assert!(
        text.contains("DECISIVE") && text.contains("default: deny"),
        "{text}"
    );

    // shadowed: a later rule that matches too
    let p = policy(
        "version = 1\n[[rule]]\nname = \"a\"\naction = \"deny\"\n[[rule]]\nname = \"b\"\naction = \"allow\"\nmatch.uid = 1000\n",
    );
    let e = p.explain(&id, &Context::default());
    assert_eq!(
        [e.rules[0].status, e.rules[1].status],
        [RuleStatus::Decisive, RuleStatus::Shadowed]
    );
    // missing attribute explained
    let p = one_rule("container = \"3f2a9c41d0e1\"");
    let e = p.explain(&ident(json!({"workload": null})), &Context::default());
    assert!(
        e.rules[0].checks[0]
            .detail
            .starts_with("peer has no container (unknown never matches)"),
        "{:?}",
        e.rules[0].checks
    );
}

#[test]
fn required_parts_follow_the_keys() {
    assert_eq!(
        one_rule("uid = 1\ngid = 1\ncgroup_id = 3").required_parts(),
        RequiredParts::default()
    );
    let p = one_rule("exe = \"/bin/*\"").required_parts();
    assert!(p.exe && p.process && !p.workload && !p.user_namespace);
    let p = one_rule("container = \"3f2a9c41d0e1\"").required_parts();
    assert!(p.workload && !p.process);
    assert_eq!(
        one_rule("cgroup = \"/a/*\"").required_parts(),
        RequiredParts::default()
    );
    assert!(one_rule("userns_uid = 0").required_parts().user_namespace);
    let p = one_rule("drift_cgroup = true").required_parts();
    assert!(p.drift && p.process);
    assert!(
        one_rule("provenance = { namespaces = \"proc_verified\" }")
            .required_parts()
            .namespaces
    );
}

#[test]
fn index_picks_the_most_selective_key() {
    let p = policy(
        r#"version = 1
[[rule]]
name = "a"
action = "allow"
match = { uid = 1, container = "3f2a9c41d0e1", unit = "x.service" }
[[rule]]
name = "b"
action = "allow"
match = { uid = 1, unit = "x.service" }
[[rule]]
name = "c"
action = "allow"
match = { uid = 1, unit = "x*.service" }
[[rule]]
name = "d"
action = "allow"
match = { cgroup = "/a/*" }
[[rule]]
name = "e"
action = "allow"
listener = "l"
[[rule]]
name = "f"
action = "allow"
match = { cgroup = ["/a/*", "/*/b"] }
[[rule]]
name = "g"
action = "allow"
match = { exe = "/usr/bin/*", unit = "app-*" }
[[rule]]
name = "h"
action = "deny"
match = { runtime = ["docker", "podman"], userns_initial = true }
"#,
    );
    let keys: Vec<_> = p.rules().iter().map(Rule::index_key).collect();
    use IndexKey::*;
    assert_eq!(
        keys,
        [
            Some(Container),
            Some(Unit),
            Some(Uid),
            Some(CgroupPrefix),
            Some(Listener),
            None,
            Some(ExePrefix),
            Some(Runtime)
        ]
    );
    let s = p.summary();
    assert_eq!(s.rules, 8);
    assert_eq!(s.unindexed, 1);
    assert_eq!(
        s.indexed,
        vec![
            (Container, 1),
            (Unit, 1),
            (Uid, 1),
            (CgroupPrefix, 1),
            (ExePrefix, 1),
            (Runtime, 1),
            (Listener, 1)
        ]
    );
    // A prefix-indexed rule is found through every prefix length of the path.
    let id = crate::testutil::ident(
        serde_json::json!({"cgroup": {"path": "/a/x"}, "peer": {"uid": 7}, "workload": null}),
    );
    assert_eq!(p.evaluate(&id, &Context::default()).by, DecidedBy::Rule(3));
}

// ---- strictness -----------------------------------------------------------------------

#[test]
fn unknown_keys_are_rejected_with_line_and_column() {
    let e =
        err("version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\n[rule.match]\n  uidd = 5\n");
    assert_eq!((e.line, e.column, e.kind), (6, 3, ConfigErrorKind::Syntax));
    assert!(e.message.contains("uidd"), "{e}");
    assert!(e.to_string().starts_with("6:3: "), "{e}");

    let e = err("version = 1\nverbose = true\n");
    assert_eq!((e.line, e.column), (2, 1));
    let e = err("version = 1\n[[rules]]\nname = \"x\"\n");
    assert_eq!(e.line, 2);
    let e =
        err("version = 1\n[[listener]]\nname = \"l\"\npath = \"/a\"\nbackend = \"/b\"\nmood = 1\n");
    assert_eq!((e.line, e.column), (6, 1));
    let e = err(
        "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.provenance = { cgroupp = \"kernel_now\" }\n",
    );
    assert_eq!(e.line, 5);
}

#[test]
fn wrong_values_are_rejected_with_line_and_column() {
    let cases: &[(&str, usize, &str)] = &[
        ("version = 2\n", 1, "unsupported policy version 2"),
        ("default = \"allow\"\n", 1, "missing `version = 1`"),
        ("version = 1\ndefault = \"maybe\"\n", 2, "unknown variant"),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"permit\"\n",
            4,
            "unknown variant",
        ),
        (
            "version = 1\n[[rule]]\naction = \"allow\"\n",
            2,
            "missing field `name`",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.container = \"3f2a9c41d0\"\n",
            5,
            "at least 12 hex",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.container = \"3f2a*\"\n",
            5,
            "not globs",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.runtime = \"dockr\"\n",
            5,
            "unknown variant `dockr`",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.uid = -1\n",
            5,
            "not a valid id",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.uid = []\n",
            5,
            "empty list",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.uid = \"root\"\n",
            5,
            "integer",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.cgroup = \"machine.slice/*\"\n",
            5,
            "not absolute",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.cgroup = \"/[a\"\n",
            5,
            "bad glob",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.comm = \"sshd\"\n",
            5,
            "forgeable",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.cmdline = \"x\"\n",
            5,
            "forgeable",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.pid = 1\n",
            5,
            "reused",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.provenance = {}\n",
            5,
            "`provenance` is empty",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch.provenance = { cgroup = \"kernel\" }\n",
            5,
            "unknown variant",
        ),
        (
            "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\n[[rule]]\nname = \"r\"\naction = \"deny\"\n",
            6,
            "duplicate rule name",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"/a\"\nbackend = \"/b\"\n[[rule]]\nname = \"r\"\naction = \"allow\"\nlistener = \"b\"\n",
            9,
            "not defined",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"/a\"\nbackend = \"/b\"\n[[listener]]\nname = \"a\"\npath = \"/c\"\nbackend = \"/b\"\n",
            7,
            "duplicate listener name",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"/a\"\nbackend = \"/b\"\n[[listener]]\nname = \"b\"\npath = \"/a\"\nbackend = \"/b\"\n",
            8,
            "used by another listener",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a b\"\npath = \"/a\"\nbackend = \"/b\"\n",
            3,
            "listener name",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"rel\"\nbackend = \"/b\"\n",
            4,
            "absolute",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"/a\"\nbackend = \"/b\"\nmode = 660\n",
            6,
            "above 0o777",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"/a\"\nbackend = \"/b\"\nmode = \"0996\"\n",
            6,
            "octal",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"/a\"\nbackend = \"/b\"\nowner = \"a:b:c\"\n",
            6,
            "user:group",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"/a\"\nbackend = \"/b\"\nidle_timeout = \"5 minutes\"\n",
            6,
            "unknown unit",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"/a\"\nbackend = \"/b\"\nidle_timeout = 0\n",
            6,
            "zero",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"/a\"\nbackend = \"/b\"\nmax_connections = 0\n",
            6,
            "between 1",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"/a\"\nbackend = \"/b\"\nexpect = { comm = \"x\" }\n",
            6,
            "forgeable",
        ),
        (
            "version = 1\n[[listener]]\nname = \"a\"\npath = \"/a\"\n",
            2,
            "missing field `backend`",
        ),
        ("version = 1\n[[rule]\n", 2, ""),
    ];
    for (text, line, needle) in cases {
        let e = err(text);
        assert_eq!(e.line, *line, "{text:?} -> {e}");
        assert!(
            e.message.contains(needle),
            "{text:?} -> {e} (wanted {needle:?})"
        );
        assert!(e.column >= 1);
    }
}

#[test]
fn forgeable_keys_point_at_the_key() {
    let e = err(
        "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\nmatch = { uid = 1, cmdline = \"x\" }\n",
    );
    assert_eq!((e.line, e.column), (5, 20), "{e}");
    let e = err(
        "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\n[rule.match]\ncomm = [\n  \"a\"]\n",
    );
    assert_eq!((e.line, e.column), (6, 1), "{e}");
}

#[test]
fn policy_parse_refuses_listeners() {
    let e = Policy::parse(GATE).unwrap_err();
    assert_eq!(e.line, 6);
    assert!(e.message.contains("gate config"), "{e}");
}

#[test]
fn owner_mode_duration_forms() {
    use crate::config::{parse_duration, parse_mode, parse_owner};
    use crate::raw::IntOrStr::{Int, Str};
    assert_eq!(parse_mode(&Str("660".into())), Ok(0o660));
    assert_eq!(parse_mode(&Str("0o600".into())), Ok(0o600));
    assert_eq!(parse_mode(&Int(0o660)), Ok(0o660));
    assert!(parse_mode(&Str("".into())).is_err());
    assert_eq!(
        parse_owner(&Int(0)),
        Ok(Owner {
            user: Some(Principal::Id(0)),
            group: None
        })
    );
    assert_eq!(
        parse_owner(&Str(":100".into())),
        Ok(Owner {
            user: None,
            group: Some(Principal::Id(100))
        })
    );
    assert!(parse_owner(&Str(":".into())).is_err());
    assert_eq!(
        parse_duration(&Str("250ms".into())),
        Ok(std::time::Duration::from_millis(250))
    );
    assert_eq!(
        parse_duration(&Str("5m".into())),
        Ok(std::time::Duration::from_secs(300))
    );
    assert_eq!(
        parse_duration(&Str("1h".into())),
        Ok(std::time::Duration::from_secs(3600))
    );
    assert!(parse_duration(&Str("99999999999999999999h".into())).is_err());
    assert!(parse_duration(&Int(-1)).is_err());
}

#[test]
fn warnings_for_unreachable_and_listenerless_rules() {
    let c = Config::parse(
        "version = 1\n[[rule]]\nname = \"all\"\naction = \"deny\"\nlistener = \"x\"\n[[rule]]\nname = \"x2\"\naction = \"allow\"\nlistener = \"x\"\nmatch.uid = 1\n[[rule]]\nname = \"y\"\naction = \"allow\"\nlistener = \"y\"\n",
    )
    .unwrap();
    let w = c.warnings();
    assert_eq!(w.len(), 4, "{w:#?}");
    assert_eq!(w[0].line, 7);
    assert!(
        w[0].to_string()
            .starts_with("7: warning: rule \"x2\" is never reached: rule \"all\" (line 3)"),
        "{w:#?}"
    );
    assert!(w[1].message.contains("no listeners"), "{w:#?}");
    assert!(Config::parse(GATE).unwrap().warnings().is_empty());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for open in ["[", "{a="] {
        let text = format!("version = 1\nx = {}", open.repeat(100_000));
        let e = err(&text);
        assert_eq!(e.line, 2, "{e}");
    }
}

#[test]
fn policy_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
    assert_send_sync::<Config>();
    assert_send_sync::<Decision>();
}
