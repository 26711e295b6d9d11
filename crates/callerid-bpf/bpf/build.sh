#!/bin/sh
# Rebuilds capture.bpf.o from capture.bpf.c. Needs clang (Debian 12: clang 14) and the
# kernel uapi headers (linux-libc-dev, pulled in by libc6-dev).
#
#   bpf/build.sh           rebuild the committed object in place
#   bpf/build.sh --check   rebuild into a temporary file and fail unless it is byte-identical
#                          to the committed one (what .ci/run does)
#
# The build runs in this directory with relative file names and DWARF stripped, so the
# object does not depend on where the repository is checked out.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
STRIP=${LLVM_STRIP:-llvm-strip}
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
out=capture.bpf.o
if [ "${1:-}" = "--check" ]; then
	out=$(mktemp --suffix=.bpf.o)
	trap 'rm -f "$out"' EXIT
fi
"$CLANG" -O2 -g -target bpf -I"/usr/include/$multiarch" \
	-fdebug-prefix-map="$PWD"=. -c capture.bpf.c -o "$out"
"$STRIP" -g "$out"
if [ "${1:-}" = "--check" ]; then
	if cmp -s "$out" capture.bpf.o; then
		echo "capture.bpf.o matches capture.bpf.c ($("$CLANG" --version | head -n1))"
	else
		echo "capture.bpf.o does NOT match capture.bpf.c; run crates/callerid-bpf/bpf/build.sh" >&2
		echo "($("$CLANG" --version | head -n1); instruction diff, committed vs rebuilt:)" >&2
		llvm-objdump -dr --no-show-raw-insn capture.bpf.o >"$out.committed.txt" || true
		llvm-objdump -dr --no-show-raw-insn "$out" >"$out.rebuilt.txt" || true
		diff -u "$out.committed.txt" "$out.rebuilt.txt" >&2 || true
		rm -f "$out.committed.txt" "$out.rebuilt.txt"
		exit 1
	fi
fi
