//! Identities for tests, built from the JSON contract (the record's fields are private
//! to `callerid`, and JSON is how `explain --identity` reads them too).

use callerid::Identity;
use serde_json::{Value, json};

/// A 64-hex podman container id used by the base identity.
pub(crate) const HEX: &str = "3f2a9c41d0e1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b";

/// A podman container peer: uid 1000, in a non-initial user namespace, no drift.
pub(crate) fn base() -> Value {
    json!({
        "version": 1,
        "peer": {"pid": 4242, "uid": 1000, "gid": 1000, "groups": [1000, 27], "security_label": null},
        "process": {"pidfs_id": 1957, "pid": 4242, "ppid": 1, "uid": 1000, "euid": 1000, "gid": 1000,
                    "egid": 1000, "comm": "sh", "exe": "/usr/bin/busybox", "state": "alive"},
        "cgroup": {"id": 519, "path": format!("/machine.slice/libpod-{HEX}.scope"), "at": "connect"},
        "namespaces": null,
        "user_namespace": {"initial": false, "uid_map": [[0, 100000, 65536]], "gid_map": [[0, 100000, 65536]],
                           "uid": 0, "gid": 0},
        "workload": {
            "container": {"runtime": "podman", "id": HEX},
            "pod": null,
            "chain": [{"kind": "container", "runtime": "podman", "id": HEX}],
            "unit": format!("libpod-{HEX}.scope"), "user_unit": null, "slice": "machine.slice"
        },
        "drift": {"cgroup": null, "changed": []},
        "provenance": {"peer": "kernel_connect", "process": "kernel_now", "cgroup": "kernel_connect",
                       "namespaces": null, "user_namespace": "proc_verified", "workload": "cgroup_path",
                       "pidfd": "so_peerpidfd"},
        "warnings": []
    })
}

/// JSON merge patch (RFC 7386): objects merge recursively, anything else replaces.
pub(crate) fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(slot) if v.is_object() && slot.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// The base identity with `patch` merged in.
pub(crate) fn ident(patch: Value) -> Identity {
    let mut v = base();
    merge(&mut v, &patch);
    serde_json::from_value(v).expect("test identity must deserialize")
}
