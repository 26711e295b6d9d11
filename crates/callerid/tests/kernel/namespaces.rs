//! placeholder
pub(crate) fn pidns_server_role() -> i32 {
    3
}
