#!/bin/bash
# Coverage of the structured generator against AFL++'s, per target, after
# scripts/afl_sweep.sh OUT_DIR: the edges (AFL++'s map entries) hit by the seeds and the
# first N generated inputs of seed 1 (what `fuzz TARGET --inputs N --seed 1` runs), the
# edges hit by AFL++'s queue, and how many each reached that the other did not.
#
# Usage: scripts/afl_coverage.sh OUT_DIR [N] [TARGET...]   (N default 100000; the core
# targets get N/10: afl-showmap forks for every input, so their signature memory is cold)
set -eu -o pipefail
out=${1:?usage: scripts/afl_coverage.sh OUT_DIR [N] [TARGET...]}
n=${2:-100000}
shift $(( $# >= 2 ? 2 : 1 ))
showmap=$(ls ~/.local/share/afl.rs/rustc-*/afl.rs-*/afl/bin/afl-showmap | sort -V | tail -1)
afl=target/afl/release/afl
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(./target/release/fuzz list | awk '$NF != "`all`)" {print $1}')
fi
map_size=$(AFL_DUMP_MAP_SIZE=1 "$afl" codec </dev/null 2>/dev/null | tail -1 || true)
edges() { cut -d: -f1 "$1" | sort -u; }
for t in "${targets[@]}"; do
  queue="$out/$t/out/default/queue"
  [ -d "$queue" ] || { echo "$t: no AFL++ queue in $queue" >&2; continue; }
  count=$n
  case "$t" in core-*) count=$((n / 10)) ;; esac
  gen="$out/$t/generated"
  rm -rf "$gen"
  ./target/release/fuzz "$t" --inputs "$count" --seed 1 --write-inputs "$gen" >/dev/null
  AFL_MAP_SIZE=$map_size AFL_QUIET=1 "$showmap" -C -i "$gen" -o "$out/$t/generated.map" -- "$afl" "$t" >/dev/null 2>&1 || true
  AFL_MAP_SIZE=$map_size AFL_QUIET=1 "$showmap" -C -i "$queue" -o "$out/$t/afl.map" -- "$afl" "$t" >/dev/null 2>&1 || true
  rm -rf "$gen"
  if [ ! -f "$out/$t/generated.map" ] || [ ! -f "$out/$t/afl.map" ]; then
    echo "$t: afl-showmap wrote no map" | tee -a "$out/coverage.txt"
    continue
  fi
  g=$(edges "$out/$t/generated.map" | wc -l)
  a=$(edges "$out/$t/afl.map" | wc -l)
  only_a=$(comm -13 <(edges "$out/$t/generated.map") <(edges "$out/$t/afl.map") | wc -l)
  only_g=$(comm -23 <(edges "$out/$t/generated.map") <(edges "$out/$t/afl.map") | wc -l)
  echo "$t: generator ($count inputs + seeds) $g edges; AFL++ queue $a edges; only AFL++ $only_a; only the generator $only_g" | tee -a "$out/coverage.txt"
done
