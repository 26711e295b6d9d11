//! Slowloris clients against a gate listener with limits.

pub(crate) fn attacker_role() -> i32 {
    3
}
