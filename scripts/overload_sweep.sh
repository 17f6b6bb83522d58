#!/bin/bash
# The overload sweep of issue 10: `bftlab local` at 50k..400k tx/s input, two runs per
# rate (ascending, then descending, so both halves share the sitting), 10 s measured.
# After each run, the datagrams the machine's UDP sockets dropped for a full receive
# buffer during it (RcvbufErrors in /proc/net/snmp, Linux only).
# Usage: scripts/overload_sweep.sh OUT_DIR   (then scripts/summarize_local.py OUT_DIR)
set -eu -o pipefail
out=${1:?usage: scripts/overload_sweep.sh OUT_DIR}
cargo build --release -p benchmark
drops() { local v; v=$(awk '/^Udp: [0-9]/ { print $6 }' /proc/net/snmp 2>/dev/null || true); echo "${v:-0}"; }
for r in 50000 100000 150000 200000 300000 400000 400000 300000 200000 150000 100000 50000; do
  before=$(drops)
  ./target/release/bftlab local --rate "$r" --duration 10 --results "$out" | grep -E "^ (consensus|end-to-end|clients) " | sed "s/^/$r /"
  echo "$r  udp receive-buffer drops: $(( $(drops) - before ))"
done
