#!/usr/bin/env bash
# Run every shipped scenario over a seed sweep with `bftlab sim` and keep the records.
#   scripts/sim_suite.sh [OUT_DIR] [SEEDS] [PROTOCOL]
#   (defaults: results/sim-suite, 1..4, each scenario's own protocol)
# BFTLAB=path/to/bftlab runs that binary instead of building target/release/bftlab
# (so the sources may change while a suite runs).
# Exit status: non-zero if any scenario failed (an expect_violation scenario fails when
# no seed shows a violation).
set -u -o pipefail
out=${1:-results/sim-suite}
seeds=${2:-1..4}
protocol=${3:-}
mkdir -p "$out"
bftlab=${BFTLAB:-}
if [ -z "$bftlab" ]; then
    cargo build --release -p benchmark >/dev/null || exit 1
    bftlab=./target/release/bftlab
fi
status=0
for scenario in harness/scenarios/*.toml; do
    if ! "$bftlab" sim "$scenario" --seeds "$seeds" --results "$out" ${protocol:+--protocol "$protocol"} | tee -a "$out/table.txt"; then
        status=1
        echo "FAILED: $scenario" | tee -a "$out/table.txt"
    fi
done
exit $status
