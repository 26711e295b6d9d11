//! Every case of `shared/corpus/cgroup-cases.jsonl` as a table test.
//!
//! Checked per case: the container id (or its absence), the runtime, the pod uid and
//! QoS, and the unit / user unit / slice / ECS task where the case gives them.
//! Runtime expectations: `host` and `unknown` without an id mean "no container";
//! `unknown` with an id must be our runtime `unknown` (the path does not name the
//! engine); `kubernetes` is met by any runtime as long as the pod uid matches.
//!
//! A case's `mountinfo` is never an input: `classify` takes only the cgroup text, so
//! the answer cannot depend on it. The two cases whose expectation can only come from
//! mountinfo are in [`SKIP`].

use callerid::workload::{Kind, Qos, Runtime, Workload, classify};
use serde_json::Value;

/// Cases we believe are mislabeled against DESIGN.md §4 / NAMING.md, with the reason.
/// Never special-cased in the classifier: they are reported to the lead instead.
const SKIP: &[(&str, &str)] = &[
    (
        "spire-docker-scope-missing-docker-prefix",
        "disputed; `/system.slice/<H64>.scope` does not name docker: we report the right id with runtime \
         `unknown` (spire's docker attestor matches any 64-hex run)",
    ),
    (
        "libdatadog-line-uuid36-regression-guard",
        "`/uuid/<UUID>` has the shape of falco's `/<namespace>/<name>` containerd cases, which the corpus \
         labels containerd; we report the right id with runtime `containerd`, this case says `unknown`",
    ),
    (
        "spire-containerinfo-cgroup-root-then-mountinfo-fallback",
        "cgroup is `0::/`; the expected container and pod come from mountinfo, which is never identity (DESIGN §2, §4)",
    ),
    (
        "elasticspec-cgroup-v2",
        "cgroup is `0::/`; the expected docker id comes from mountinfo, which is never identity (DESIGN §2, §4)",
    ),
    (
        "ddjava-file-fargate14-mixed-last-line-wins",
        "expects the LAST line's id; DESIGN §4 decides the first line in file order (no 0:: line here)",
    ),
    (
        "elasticnode-multi-container-file-last-wins",
        "expects the LAST line's id; DESIGN §4 decides the first line in file order (no 0:: line here)",
    ),
    (
        "spire-docker-two-different-ids-error",
        "spire errors on two different ids; DESIGN §4 takes the first line that names a workload",
    ),
    (
        "spire-k8s-multiple-container-ids-error",
        "spire errors on two different ids; DESIGN §4 takes the first line that names a workload",
    ),
    (
        "spire-k8s-multiple-pod-uids-error",
        "spire errors on two different pod uids; DESIGN §4 takes the first line that names a workload",
    ),
    (
        "spire-k8spath-just-container-segment",
        "bare `/<H64>` at the root is docker's old Debian/GCE layout in NAMING.md; spire's attestor wants a pod too",
    ),
    (
        "libdatadog-file-uppercase-hex-rejected",
        "DESIGN §4: 64-hex ids are compared case-insensitively and reported lowercase",
    ),
    (
        "otelgo-with-suffix",
        "35-hex id: DESIGN §4 container ids are 64 hex",
    ),
    (
        "otelgo-with-prefix-and-suffix",
        "35-hex id: DESIGN §4 container ids are 64 hex",
    ),
    (
        "otelgo-reader-first-line-wins",
        "35-hex id: DESIGN §4 container ids are 64 hex",
    ),
    (
        "oteldotnet-v1-cgroupv1-with-prefix",
        "36-hex id: DESIGN §4 container ids are 64 hex",
    ),
    (
        "ddpy-gen-docker-uuid36-container-id",
        "a UUID under /docker/: DESIGN §4 UUIDs count only in their runtime's own context, docker ids are 64 hex",
    ),
    (
        "ddpy-gen-docker-uuid-underscored-scope",
        "an underscored UUID under /docker/: DESIGN §4 UUIDs count only in their runtime's own context",
    ),
    (
        "libdatadog-file-v2-custom-path",
        "`/custom/path` has exactly the shape of falco's `/<namespace>/<name>` containerd cases (`/default/a`, \
      `/my.namespace/container.name`), which the corpus labels containerd; both cannot hold",
    ),
];

fn shared_dir() -> String {
    std::env::var("CALLERID_SHARED_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").to_owned())
}

fn runtime_name(r: Runtime) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn qos_name(q: Qos) -> String {
    serde_json::to_value(q)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn opt_str(v: &Value) -> Option<&str> {
    v.as_str()
}

/// The mismatches of one case, empty when it passes.
fn check(case: &Value, w: &Workload<'_>) -> Vec<String> {
    let mut errs = Vec::new();
    let e = &case["expect"];
    let want_rt = e["runtime"].as_str().unwrap_or("");
    let want_id = opt_str(&e["container_id"]);
    let got_id = w.container.as_ref().map(|c| c.id.as_ref());
    if want_id != got_id {
        errs.push(format!("container id: want {want_id:?}, got {got_id:?}"));
    }
    if let (Some(_), Some(c)) = (want_id, w.container.as_ref()) {
        let got_rt = runtime_name(c.runtime);
        let ok = match want_rt {
            "kubernetes" => {
                got_rt == "kubernetes"
                    || (e.get("pod_uid").and_then(Value::as_str).is_some()
                        && w.pod.as_ref().map(|p| p.uid.as_ref()) == e["pod_uid"].as_str())
            }
            other => got_rt == other,
        };
        if !ok {
            errs.push(format!("runtime: want {want_rt}, got {got_rt}"));
        }
    }
    if let Some(v) = e.get("pod_uid") {
        let got = w.pod.as_ref().map(|p| p.uid.as_ref());
        if opt_str(v) != got {
            errs.push(format!("pod uid: want {v}, got {got:?}"));
        }
    }
    if let Some(v) = e.get("qos") {
        let got = w.pod.as_ref().map(|p| qos_name(p.qos));
        if opt_str(v) != got.as_deref() {
            errs.push(format!("qos: want {v}, got {got:?}"));
        }
    }
    for (key, got) in [
        ("unit", &w.unit),
        ("user_unit", &w.user_unit),
        ("slice", &w.slice),
    ] {
        if let Some(v) = e.get(key)
            && opt_str(v) != got.as_deref()
        {
            errs.push(format!("{key}: want {v}, got {got:?}"));
        }
    }
    if let Some(task) = e.get("task_id").and_then(Value::as_str) {
        let has = w.chain.iter().any(|el| {
            el.kind == Kind::Sandbox && runtime_name(el.runtime) == "ecs" && el.id == task
        });
        if !has {
            errs.push(format!(
                "task id: want {task} as an ecs sandbox, chain {:?}",
                w.chain
            ));
        }
    }
    errs
}

#[test]
fn corpus() {
    let path = format!("{}/corpus/cgroup-cases.jsonl", shared_dir());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (mut pass, mut skipped, mut failures) = (0, 0, Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("corpus line is JSON");
        let id = case["id"].as_str().unwrap_or("?").to_owned();
        let cgroup = case["cgroup"].as_str().expect("cgroup is a string");
        let w = classify(cgroup);
        let errs = check(&case, &w);
        if SKIP.iter().any(|(s, _)| *s == id) {
            // A skipped case that passes means the skip list is stale.
            assert!(!errs.is_empty(), "{id} is in SKIP but passes: remove it");
            skipped += 1;
            continue;
        }
        if errs.is_empty() {
            pass += 1;
        } else {
            failures.push(format!(
                "{id}: {}\n    input {cgroup:?}\n    got {w:?}",
                errs.join("; ")
            ));
        }
    }
    eprintln!(
        "corpus: {pass} pass, {skipped} skipped as mislabeled, {} fail",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
