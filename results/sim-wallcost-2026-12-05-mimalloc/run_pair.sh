#!/bin/sh
# One pair: the same scenario under the glibc-malloc binary and the mimalloc binary
# at once, one per core. Usage: run_pair.sh SCENARIO LABEL
R=/work/main/results/sim-wallcost-2026-12-05-mimalloc
S=$1; L=$2
for a in glibc mimalloc; do
  nice -n 5 /usr/bin/time -f "$a $L: %e s wall, %M KB" /tmp/bftlab-$a sim $S --protocol hotstuff --results $R/runs > $R/$L-$a.txt 2>&1 &
done
wait
