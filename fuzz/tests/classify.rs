//! Fuzz target for the workload classifier.
//!
//! Coverage-guided: `cargo bolero test --manifest-path fuzz/Cargo.toml --test classify
//! classify_never_panics` (cargo-bolero, stable toolchain, libfuzzer engine). As a plain
//! `cargo test` it runs the same check over random inputs, so it never rots.
#![forbid(unsafe_code)]

use callerid::workload::{Kind, classify};

#[test]
fn classify_never_panics() {
    bolero::check!().for_each(|input: &[u8]| {
        let Ok(text) = std::str::from_utf8(input) else { return };
        let w = classify(text);
        for e in &w.chain {
            assert!(!e.id.is_empty(), "empty id in {:?} for {text:?}", w.chain);
        }
        if let Some(c) = &w.container {
            let innermost = w.chain.iter().rev().find(|e| e.kind == Kind::Container);
            assert!(
                innermost.is_some_and(|e| e.id == c.id && e.runtime == c.runtime),
                "container is not the innermost container of the chain: {w:?}"
            );
        }
        if let Some(p) = &w.pod {
            assert!(w.chain.iter().any(|e| e.kind == Kind::Pod && e.id == p.uid), "{w:?}");
        }
        // The owned copy the identifier caches must be equal to the borrowed result.
        assert_eq!(w.clone().into_owned(), w);
    });
}
