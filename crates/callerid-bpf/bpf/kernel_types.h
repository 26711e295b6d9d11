/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The few kernel types the capture program reads, trimmed to the fields it uses.
 *
 * A full `bpftool btf dump ... format c` vmlinux.h is ~134k lines; the program needs five
 * fields. Every struct is marked preserve_access_index, so clang records each access as a
 * CO-RE relocation (type name + field path) and the loader re-resolves the offsets against
 * the running kernel's BTF by name. The offsets written here are therefore placeholders.
 */
#ifndef CALLERID_KERNEL_TYPES_H
#define CALLERID_KERNEL_TYPES_H

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct kernfs_node {
	__u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct sock_cgroup_data {
	struct cgroup *cgroup;
};

struct sock {
	struct sock_cgroup_data sk_cgrp_data;
};

struct unix_sock {
	struct sock sk;
};

#pragma clang attribute pop

#endif
