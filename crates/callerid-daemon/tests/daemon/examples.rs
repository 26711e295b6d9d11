//! The shipped example configs compile (gate configs and the serve policy).

use std::path::PathBuf;

fn examples() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))
}

#[test]
fn every_example_compiles() {
    let mut seen = 0;
    for e in std::fs::read_dir(examples()).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg = callerid_policy::Config::parse(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if path.file_name().unwrap() == "serve-policy.toml" {
            assert!(cfg.listeners.is_empty());
            callerid_policy::Policy::parse(&text).unwrap();
        } else {
            assert!(
                !cfg.listeners.is_empty(),
                "{} has no listener",
                path.display()
            );
        }
        seen += 1;
    }
    assert!(seen >= 4, "examples found: {seen}");
}
