#!/bin/sh
# n = 50, 60 simulated seconds, with every fix of this change (binary built at d47869c's
# code): jumbo datagrams and the default size, side by side, one per core.
R=/work/main/results/sim-wallcost-2026-12-05-jumbo
S=/work/main/harness/scenarios/wallcost
B=${BFTLAB:-/tmp/bftlab-after}
nice -n 5 /usr/bin/time -f "jumbo n50 (60 s): %e s wall, %M KB" $B sim $S/n50-60s-jumbo.toml --protocol hotstuff --results $R/runs > $R/n50-60s-jumbo-linearizer.txt 2>&1 &
nice -n 5 /usr/bin/time -f "default n50 (60 s): %e s wall, %M KB" $B sim $R/n50-60s.toml --protocol hotstuff --results $R/runs > $R/n50-60s-linearizer.txt 2>&1 &
wait
