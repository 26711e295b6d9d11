//! Fuzz target for the policy / gate-config parser and validator.
//!
//! Coverage-guided: `cargo bolero test policy_parse_never_panics --manifest-path
//! fuzz/Cargo.toml --sanitizer NONE` (cargo-bolero, stable toolchain). As a plain `cargo test`
//! it runs the same check over random inputs. Any input must give `Ok` or a
//! `ConfigError` whose position lies inside the text — never a panic.
#![forbid(unsafe_code)]

use callerid_policy::{Config, Policy};

#[test]
fn policy_parse_never_panics() {
    bolero::check!().for_each(|input: &[u8]| {
        let Ok(text) = std::str::from_utf8(input) else { return };
        match Config::parse(text) {
            Ok(config) => {
                let _ = config.policy.summary();
                let _ = config.required_parts();
                let _ = config.warnings();
                for l in &config.listeners {
                    let _ = l.context();
                }
            }
            Err(e) => {
                let lines = text.split('\n').count();
                assert!(e.line >= 1 && e.line <= lines, "line {} outside 1..={lines}: {e}", e.line);
                assert!(e.column >= 1, "column 0: {e}");
            }
        }
        let _ = Policy::parse(text);
    });
}
