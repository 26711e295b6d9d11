//! `callerid classify`: the real binary, fed through stdin and files.

use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Output, Stdio};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callerid"))
        .arg("classify")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn callerid");
    let mut pipe = child.stdin.take().expect("stdin");
    // The binary may refuse early (too large) and close stdin: a broken pipe is fine.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().expect("wait callerid")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}, stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn json_is_the_workload_object_exactly() {
    let input = format!("12:pids:/\n0::/machine.slice/libpod-{ID}.scope/container\n");
    let got = json_of(&run(&["--json"], input.as_bytes()));
    let want = json!({
        "container": {"runtime": "podman", "id": ID},
        "pod": null,
        "chain": [{"kind": "container", "runtime": "podman", "id": ID}],
        "unit": format!("libpod-{ID}.scope"),
        "user_unit": null,
        "slice": "machine.slice",
    });
    assert_eq!(got, want);
}

#[test]
fn dash_and_file_read_the_same_input() {
    let input = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2d3da189_6407_48e3_9ab6_78188d75e609.slice/cri-containerd-{ID}.scope"
    );
    let from_stdin = json_of(&run(&["--json", "-"], input.as_bytes()));
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(input.as_bytes()).expect("write temp file");
    let path = file.path().to_str().expect("utf-8 temp path").to_owned();
    let from_file = json_of(&run(&["--json", &path], b""));
    assert_eq!(from_stdin, from_file);
    assert_eq!(
        from_file["pod"],
        json!({"uid": "2d3da189-6407-48e3-9ab6-78188d75e609", "qos": "burstable"})
    );
    assert_eq!(from_file["container"]["runtime"], "containerd");
    assert_eq!(from_file["chain"][0]["kind"], "pod");
}

#[test]
fn human_form_prints_chain_then_units() {
    let input = format!(
        "0::/docker/{ID}/kubepods/besteffort/pod3d274242-8ee0-11e9-a8a6-1e68d864ef1a/{ID}\n"
    );
    let out = run(&[], input.as_bytes());
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            format!("container  docker      {ID}").as_str(),
            "pod        kubernetes  3d274242-8ee0-11e9-a8a6-1e68d864ef1a  (qos besteffort)",
            format!("container  kubernetes  {ID}").as_str(),
            "unit       -",
            "user_unit  -",
            "slice      -.slice",
        ]
    );
}

#[test]
fn empty_and_unrecognised_input_is_an_empty_workload() {
    for input in [
        &b""[..],
        b"\n\n",
        b"This is not valid",
        b"12:pids:/\n0::/\n",
    ] {
        let got = json_of(&run(&["--json"], input));
        assert_eq!(got["container"], Value::Null, "input {input:?}");
        assert_eq!(got["chain"], json!([]), "input {input:?}");
        for key in ["container", "pod", "chain", "unit", "user_unit", "slice"] {
            assert!(got.get(key).is_some(), "key {key} missing for {input:?}");
        }
    }
    let out = run(&[], b"");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("no workload\n"));
}

#[test]
fn binary_garbage_is_a_clear_error() {
    for (input, needle) in [(&b"0::/\0docker"[..], "NUL"), (b"0::/\xff\xfe", "UTF-8")] {
        let out = run(&["--json"], input);
        assert!(!out.status.success(), "input {input:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "stderr {err:?} does not say {needle}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn input_over_one_mib_is_refused() {
    let big = vec![b'/'; (1 << 20) + 1];
    let out = run(&["--json"], &big);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than"));
    // Exactly 1 MiB is still cgroup-sized enough to be read.
    let ok = run(&["--json"], &big[1..]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let out = run(&["/nonexistent/callerid-classify-input"], b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/callerid-classify-input"));
}
