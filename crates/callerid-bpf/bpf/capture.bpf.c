// SPDX-License-Identifier: GPL-2.0-only
/*
 * callerid connect-time cgroup capture (DESIGN.md section 5).
 *
 * The socket accept() returns was allocated by the *connecting* task inside connect(), so its
 * sk_cgrp_data holds the client's cgroup as of connect(). No getsockopt exposes it, but
 * getsockname() on that socket runs the cgroup/getsockname_unix hook (Linux >= 6.7) with
 * ctx->sk pointing at it. This program copies the cgroup id into the socket's own SK_STORAGE;
 * the daemon then reads it with bpf_map_lookup_elem(map, &accepted_fd).
 *
 * It is attached at the cgroup2 root (the hook runs for the cgroup of the *socket*, i.e. the
 * client's), so it sees every process's getsockname(). It acts only when the caller is the
 * daemon that loaded it (daemon_tgid), so several daemons, each with its own program and map,
 * never touch each other's data. It never changes the result: it always returns 1.
 *
 * Rebuild: bpf/build.sh (the committed capture.bpf.o must match; .ci/run checks it).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include "kernel_types.h"

#define SEC(name) __attribute__((section(name), used))

/* Helper ids are uapi (enum bpf_func_id); declared here so no libbpf headers are needed. */
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)BPF_FUNC_get_current_pid_tgid;
static void *(*bpf_sk_storage_get)(void *map, void *sk, void *value,
				   __u64 flags) = (void *)BPF_FUNC_sk_storage_get;
static struct unix_sock *(*bpf_skc_to_unix_sock)(void *sk) = (void *)BPF_FUNC_skc_to_unix_sock;

/* What is kept per socket. Mirrored by `sys::SockCgroup` in the loader. */
struct sock_cgroup {
	__u64 cgroup_id;
};

/*
 * A BTF-defined map in libbpf's layout, so other tools can load this object too. callerid's
 * loader creates the map from the same parameters (src/loader.rs) and binds it to this
 * symbol's relocations by name.
 */
struct {
	int (*type)[BPF_MAP_TYPE_SK_STORAGE];
	int (*map_flags)[BPF_F_NO_PREALLOC];
	int *key;
	struct sock_cgroup *value;
} sock_cgroup SEC(".maps");

/* Set by the loader to the daemon's tgid before the program is loaded (frozen, read-only). */
const volatile __u32 daemon_tgid = 0;

SEC("cgroup/getsockname_unix")
int callerid_getsockname_unix(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk;
	struct unix_sock *us;
	struct sock_cgroup *v;
	struct cgroup *cg;

	if ((bpf_get_current_pid_tgid() >> 32) != daemon_tgid)
		return 1;
	sk = ctx->sk;
	if (!sk)
		return 1;
	us = bpf_skc_to_unix_sock(sk);
	if (!us)
		return 1;
	cg = us->sk.sk_cgrp_data.cgroup;
	if (!cg)
		return 1;
	v = bpf_sk_storage_get(&sock_cgroup, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!v)
		return 1;
	v->cgroup_id = cg->kn->id;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
