//! Reload: atomic swap, established connections untouched, invalid files rejected.

use crate::support::*;
use std::os::unix::net::UnixStream;

fn config(default: &str) -> String {
    format!(
        r#"
version = 1
default = "{default}"

[[listener]]
name = "rl"
path = "{{dir}}/gate.sock"
backend = "{{dir}}/backend.sock"
"#
    )
}

#[test]
fn reload_under_traffic_keeps_established_connections() {
    let d = TestDaemon::gate(&config("allow"));
    let _b = echo_backend(&d.path("backend.sock"));
    let mut established = UnixStream::connect(&d.socket).unwrap();
    assert!(roundtrip(&mut established, "before\n"));
    // Traffic keeps flowing while the policy flips to deny.
    let socket = d.socket.clone();
    let traffic = std::thread::spawn(move || {
        let mut outcomes = Vec::new();
        for _ in 0..200 {
            let mut s = UnixStream::connect(&socket).unwrap();
            outcomes.push(!refused(&mut s));
        }
        outcomes
    });
    d.rewrite_and_reload("gate.toml", &config("deny")).unwrap();
    let outcomes = traffic.join().unwrap();
    // Once denied, never allowed again: the swap is atomic, not flapping.
    let first_deny = outcomes.iter().position(|ok| !ok).unwrap_or(outcomes.len());
    assert!(outcomes[first_deny..].iter().all(|ok| !ok), "{outcomes:?}");
    let mut after = UnixStream::connect(&d.socket).unwrap();
    assert!(refused(&mut after), "new connections see the new policy");
    assert!(
        roundtrip(&mut established, "after\n"),
        "the established connection is untouched"
    );
    assert!(
        d.scrape()
            .contains(r#"callerid_policy_reloads_total{result="ok"} 1"#)
    );
}

#[test]
fn invalid_reload_keeps_the_old_policy() {
    let d = TestDaemon::gate(&config("allow"));
    let _b = echo_backend(&d.path("backend.sock"));
    let err = d.rewrite_and_reload(
        "gate.toml",
        "version = 1\n[[rule]]\nname = \"x\"\naction = \"maybe\"\nbogus = 1\n",
    );
    assert!(err.is_err(), "an invalid file is rejected");
    let mut s = UnixStream::connect(&d.socket).unwrap();
    assert!(roundtrip(&mut s, "old policy still allows\n"));
    assert!(
        d.scrape()
            .contains(r#"callerid_policy_reloads_total{result="error"} 1"#)
    );
}

#[test]
fn serve_reload_from_policy_file() {
    let d = TestDaemon::serve(Some("version = 1\ndefault = \"allow\"\n"));
    let v: serde_json::Value = serde_json::from_str(&ask(&d.socket)).unwrap();
    assert_eq!(v["decision"]["allow"], true);
    d.rewrite_and_reload("policy.toml", "version = 1\ndefault = \"deny\"\n")
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ask(&d.socket)).unwrap();
    assert_eq!(v["decision"]["allow"], false);
}
