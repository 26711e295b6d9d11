#!/usr/bin/env bash
# Seeds the classify fuzz corpus with every input of the public cgroup corpus, so the
# engine starts from real /proc/<pid>/cgroup texts instead of from nothing.
# Usage: fuzz/seed.sh [SHARED_DIR]   (default: $CALLERID_SHARED_DIR or ../shared)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shared="${1:-${CALLERID_SHARED_DIR:-$here/../../shared}}"
out="$here/tests/__fuzz__/classify_never_panics/corpus"
mkdir -p "$out"
python3 - "$shared/corpus/cgroup-cases.jsonl" "$out" <<'PY'
import json, sys, hashlib, pathlib
src, out = sys.argv[1], pathlib.Path(sys.argv[2])
n = 0
for line in open(src, encoding="utf-8"):
    if line.strip():
        data = json.loads(line)["cgroup"].encode()
        (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
        n += 1
print(f"seeded {n} inputs into {out}")
PY
