#!/bin/bash
# Alternating runs: default vs network.ack_eliciting_threshold=T at rate R.
R=${1:-200000}; T=${2:-16}; N=${3:-3}
for i in $(seq 1 $N); do
  for v in base ack; do
    if [ $v = base ]; then extra=""; else extra="--param network.ack_eliciting_threshold=$T"; fi
    ./target/release/bftlab local --rate $R --duration 10 --results results/ack-frequency-2026-12-05/records $extra 2>&1 | grep -E "^ (consensus|end-to-end|clients) " | sed "s/^/$v $R $i /"
  done
done
