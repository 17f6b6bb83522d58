#!/bin/bash
# Alternating `bftlab local` runs of named variants at rate R, N rounds.
# A variant is NAME=BINARY[:extra args]; e.g. base=/tmp/bftlab-base jumbo=/tmp/bftlab-base:--param,network.max_udp_payload=8952
# Usage: variants.sh R N VARIANT...
R=$1; N=$2; shift 2
D=$(dirname "$0")
for i in $(seq 1 $N); do
  for v in "$@"; do
    name=${v%%=*}; rest=${v#*=}; bin=${rest%%:*}; extra=""
    [[ "$rest" == *:* ]] && extra=$(echo "${rest#*:}" | tr ',' ' ')
    $bin local --rate $R --duration 10 $extra --results $D/records 2>&1 | grep -E "^ (consensus|end-to-end|clients) " | sed "s/^/$name $R $i /"
  done
done
