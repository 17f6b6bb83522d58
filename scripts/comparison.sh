#!/usr/bin/env bash
# Measure every core side by side and write the comparison page (issue 17).
#   scripts/comparison.sh [DIR]        (default results/comparison)
# BFTLAB=path/to/bftlab runs that binary instead of building target/release/bftlab.
#
# About two and a half hours on a 2-core machine: the local sweep runs one benchmark at a
# time on a quiet machine (nothing else should run meanwhile), then the simulations two
# at a time (each 50-node one takes about 15 minutes). Every run is recorded under DIR as it finishes; the sweeps resume (run the
# script again after an interruption and it picks up where it stopped). The page is
# then regenerated from the records alone: `bftlab report DIR`.
set -euo pipefail
dir=${1:-results/comparison}
bftlab=${BFTLAB:-}
if [ -z "$bftlab" ]; then
    cargo build --release -p benchmark
    bftlab=./target/release/bftlab
fi

# Local cluster: 4 nodes on loopback, 512 B transactions; the benchmark guide's input
# rates without faults, then one crashed node and one Byzantine node at 50,000 tx/s.
# Three repeats each, interleaved (every core runs once before any runs again).
common=(--repeats 3 --duration 10 --warmup 5 --results "$dir/local" --resume)
"$bftlab" sweep --rates 10000,50000,100000,150000,200000 "${common[@]}"
"$bftlab" sweep --rates 50000 --faults crash,byzantine:equivocate+garbage "${common[@]}"

# Simulation: the happy path at n = 4, 10 and 50; one crash; rotating crashed leaders;
# a 2-2 partition and a minority cut off for long; the measured AWS WAN (10 regions) and
# a 7-node WAN with a crash and a Byzantine member; an equivocator; lost datagrams.
s=harness/scenarios
"$bftlab" sim-sweep $s/happy-n4.toml $s/happy-n10.toml $s/crash-one.toml \
    $s/leader-crashes.toml $s/partition-2-2.toml $s/minority-long-partition.toml \
    $s/wan-n10.toml $s/wan-n7-crash-byzantine.toml $s/byzantine-equivocate.toml \
    $s/packet-loss.toml --seeds 1..4 --results "$dir/sim" --resume
"$bftlab" sim-sweep $s/wallcost/n50.toml --seeds 1..2 --results "$dir/sim" --resume

"$bftlab" report "$dir"
