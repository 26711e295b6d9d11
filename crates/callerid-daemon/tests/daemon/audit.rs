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
            "drift",
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

#[test]
fn a_stuck_audit_sink_never_blocks_answers() {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // The audit "file" is a FIFO that nobody reads: the writer thread blocks once the
    // pipe is full, the queue (8 records) fills, and later records are dropped and
    // counted, while every connection is still answered.
    let (tx, rx) = std::sync::mpsc::channel();
    let d = TestDaemon::serve_tuned(None, |cfg, dir| {
        let fifo = dir.join("audit.fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // A reader must exist for the daemon's O_WRONLY open to return; it never reads.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&fifo)
            .unwrap();
        tx.send(reader).unwrap();
        cfg.audit = Some(callerid_daemon::AuditSink::File(fifo));
        cfg.audit_queue = 8;
    });
    let mut reader = rx.recv().unwrap();
    for _ in 0..600 {
        let v: Value = serde_json::from_str(&ask(&d.socket)).unwrap();
        assert_eq!(v["decision"]["allow"], true);
    }
    let dropped = sample(&d.scrape(), "callerid_audit_dropped_total").unwrap();
    assert!(
        dropped > 0.0,
        "records beyond the queue are dropped and counted"
    );
    // Unblock the writer so the daemon can finish.
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(_) => return,
            }
        }
    });
    drop(d);
    drain.join().unwrap();
}
