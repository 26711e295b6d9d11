//! Audit lines: valid JSON, complete, one per decision, matching the connection.

use crate::support::*;
use serde_json::Value;

#[test]
fn lines_are_valid_and_complete() {
    let d = TestDaemon::serve(None);
    let answers: Vec<Value> = (0..3)
        .map(|_| serde_json::from_str(&ask(&d.socket)).unwrap())
        .collect();
    let lines = d.audit_lines(3);
    assert_eq!(lines.len(), 3);
    let mut conns = Vec::new();
    for (line, answer) in lines.iter().zip(&answers) {
        for key in [
            "time",
            "connection",
            "listener",
            "allow",
            "rule",
            "reasons",
            "peer",
            "pidfs_id",
            "process_state",
            "cgroup",
            "container",
            "pod",
            "unit",
            "user_unit",
            "warnings",
        ] {
            assert!(line.get(key).is_some(), "audit line lacks {key}: {line}");
        }
        let t = line["time"].as_str().unwrap();
        assert_eq!(t.len(), "2026-12-04T16:05:09.123456Z".len(), "{t}");
        assert!(
            t.ends_with('Z') && &t[4..5] == "-" && &t[10..11] == "T",
            "{t}"
        );
        assert_eq!(line["listener"], "serve");
        assert_eq!(line["allow"], answer["decision"]["allow"]);
        assert_eq!(line["peer"]["pid"], std::process::id());
        assert_eq!(line["peer"]["uid"], answer["identity"]["peer"]["uid"]);
        assert_eq!(line["pidfs_id"], answer["identity"]["process"]["pidfs_id"]);
        assert_eq!(line["cgroup"]["id"], answer["identity"]["cgroup"]["id"]);
        assert_eq!(line["cgroup"]["path"], answer["identity"]["cgroup"]["path"]);
        assert_eq!(
            line["cgroup"]["provenance"],
            answer["identity"]["provenance"]["cgroup"]
        );
        conns.push(line["connection"].as_u64().unwrap());
    }
    conns.dedup();
    assert_eq!(conns.len(), 3, "each line names its own connection");
}
