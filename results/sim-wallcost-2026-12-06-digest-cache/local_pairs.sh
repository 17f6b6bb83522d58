#!/bin/bash
# Alternating `bftlab local` runs, base (5731f91) vs v2 (6d854f3) binaries, at rate R, N pairs.
R=${1:-200000}; N=${2:-3}
D=/work/main/results/sim-wallcost-2026-12-06-digest-cache
for i in $(seq 1 $N); do
  for a in base v2; do
    /tmp/bftlab-$a local --rate $R --duration 10 --results $D/local-records 2>&1 | grep -E "^ (consensus|end-to-end|clients) " | sed "s/^/$a $R $i /"
  done
done
