//! The metrics endpoint: Prometheus text that parses and counts what happened.

use crate::support::*;

/// Every sample line is `name{labels} value` or `name value` with a number.
fn parse(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name {name:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "bad labels {labels:?}"
            );
        }
        out.push((series.to_string(), v));
    }
    out
}

#[test]
fn scraped_and_parsed() {
    let d = TestDaemon::serve(None);
    for _ in 0..5 {
        ask(&d.socket);
    }
    d.audit_lines(5);
    let text = d.scrape();
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    let samples = parse(&text);
    assert!(!samples.is_empty());
    assert_eq!(
        sample(
            &text,
            r#"callerid_connections_accepted_total{listener="serve"}"#
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"callerid_connections_allowed_total{listener="serve",rule="(default)"}"#
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"callerid_identify_duration_seconds_count{listener="serve"}"#
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"callerid_decide_duration_seconds_count{listener="serve"}"#
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "callerid_audit_dropped_total"),
        Some(0.0),
        "{text}"
    );
    // The in-process view is the same exposition.
    assert!(
        d.handle
            .metrics_text()
            .contains("callerid_connections_accepted_total")
    );
}
