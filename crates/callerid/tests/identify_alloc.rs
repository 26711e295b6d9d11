//! "No per-connection allocation beyond the Identity itself": on warm caches,
//! `identify()` allocates no more often than cloning the `Identity` it returns does
//! (the record's own strings and vectors). Counted with a global allocator; this binary
//! holds a single test so no other test thread allocates while it counts.

use callerid::{Identifier, Parts};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::os::unix::net::UnixStream;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn warm_identify_allocates_only_the_identity() {
    let (a, _b) = UnixStream::pair().expect("socketpair");
    let cases = [
        ("MINIMAL", Parts::MINIMAL),
        ("KERNEL_ONLY", Parts::KERNEL_ONLY),
        (
            "KERNEL_ONLY + user_namespace",
            Parts {
                user_namespace: true,
                ..Parts::KERNEL_ONLY
            },
        ),
        ("ALL", Parts::ALL),
    ];
    for (name, parts) in cases {
        let ident = Identifier::builder()
            .parts(parts)
            .build()
            .expect("identifier");
        // Warm: cgroup path and workload, user namespace maps, pid namespace.
        for _ in 0..3 {
            ident.identify(&a).expect("identify");
        }
        let region = Region::new(GLOBAL);
        let who = ident.identify(&a).expect("identify");
        let identify = region.change();
        let region = Region::new(GLOBAL);
        let copy = who.clone();
        let clone = region.change();
        drop(copy);
        assert!(who.warnings().is_empty(), "{name}: {:?}", who.warnings());
        assert!(
            identify.allocations + identify.reallocations <= clone.allocations,
            "{name}: identify made {} allocations and {} reallocations, the Identity \
             itself needs {}",
            identify.allocations,
            identify.reallocations,
            clone.allocations
        );
    }
}
