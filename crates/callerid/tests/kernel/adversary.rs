//! placeholder
pub(crate) fn adversary_role() -> i32 {
    3
}
