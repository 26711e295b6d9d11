//! The last resort: a component that is a 64-hex id (optionally with a `.<suffix>`)
//! in no runtime's context is still a container id, with runtime `unknown`. Under a
//! Kubernetes pod the kubernetes family turns that into runtime `kubernetes`; at the
//! root of the hierarchy (`/<H64>`, old Debian/GCE docker) the docker family claims it
//! first. Docker's `--cgroup-parent=/<parent>` layout lands here too: nothing in the
//! path names docker. Other id shapes (UUIDs,
//! short hex runs) never count here: they are ids only in their own runtime's context.

use super::Runtime;
use super::shape::id64_suffixed;
use super::walk::{Family, Leaf};

pub(crate) struct Generic;

impl Family for Generic {
    fn leaf<'a>(&self, comp: &'a str) -> Option<Leaf<'a>> {
        let id = id64_suffixed(comp)?;
        Some(Leaf::container(Runtime::Unknown, id, comp.len() > 64))
    }
}
