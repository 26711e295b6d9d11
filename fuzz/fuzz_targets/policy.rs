//! Fuzz target: the policy / gate-config parser and validator.
//!
//! Any input must give `Ok` or a `ConfigError` whose line and column lie inside the
//! text (never a panic, never an out-of-range position); a config that parses must
//! also survive `summary()` and `required_parts()`.

fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match callerid_policy::Config::parse(text) {
        Ok(config) => {
            let _ = config.policy.summary();
            let _ = config.required_parts();
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
    let _ = callerid_policy::Policy::parse(text);
}

fn main() {
    afl::fuzz!(|data: &[u8]| check(data));
}
