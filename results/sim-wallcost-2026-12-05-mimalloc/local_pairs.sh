#!/bin/bash
# Alternating `bftlab local` runs, glibc malloc vs mimalloc binaries, at rate R, N pairs.
R=${1:-200000}; N=${2:-3}
D=/work/main/results/sim-wallcost-2026-12-05-mimalloc
for i in $(seq 1 $N); do
  for a in glibc mimalloc; do
    /tmp/bftlab-$a local --rate $R --duration 10 --results $D/local-records 2>&1 | grep -E "^ (consensus|end-to-end|clients) " | sed "s/^/$a $R $i /"
  done
done
