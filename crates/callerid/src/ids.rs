//! Newtypes for the numbers that identify things, so that a cgroup id can never be
//! passed where a pidfs id or a uid was meant.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name($inner);

        impl $name {
            /// Wraps a raw value.
            pub const fn new(raw: $inner) -> Self {
                Self(raw)
            }
            /// The raw value.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<$inner> for $name {
            fn from(raw: $inner) -> Self {
                Self(raw)
            }
        }
    };
}

id_newtype!(
    /// A cgroup v2 id: the kernfs node id of the cgroup directory (its `st_ino`).
    /// Not reused within a boot; the same in every cgroup namespace.
    CgroupId(u64)
);
id_newtype!(
    /// The pidfs inode of a process (`fstat(pidfd).st_ino`): unique per process for the
    /// life of the boot, unlike a pid.
    PidfsId(u64)
);
id_newtype!(
    /// A process id as seen from the identifying process's pid namespace.
    Pid(u32)
);
id_newtype!(
    /// A user id as the identifying process sees it (already mapped by the kernel
    /// into our user namespace; 65534 when unmapped).
    Uid(u32)
);
id_newtype!(
    /// A group id as the identifying process sees it.
    Gid(u32)
);
id_newtype!(
    /// A user id as seen *inside the peer's own user namespace*.
    NsUid(u32)
);
id_newtype!(
    /// A group id as seen *inside the peer's own user namespace*.
    NsGid(u32)
);
id_newtype!(
    /// The inode number of a namespace (`readlink /proc/<pid>/ns/<type>`).
    NsInode(u64)
);
