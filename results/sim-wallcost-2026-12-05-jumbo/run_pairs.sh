#!/bin/sh
# n = 50, 20 simulated seconds on Ethernet-sized datagrams: the binary before this
# change (3f361f0) and after it, one after the other, beside the 60-second jumbo run.
R=/work/main/results/sim-wallcost-2026-12-05-jumbo
S=/work/main/harness/scenarios/wallcost
for b in before after; do
  nice -n 5 /usr/bin/time -f "$b n50 (20 s): %e s wall, %M KB" /tmp/bftlab-$b sim $S/n50.toml --protocol hotstuff --results $R/runs > $R/n50-$b.txt 2>&1
done
