#!/bin/bash
# Coverage-guided fuzzing of issue 11 with AFL++ (cargo-afl, stable Rust, gcc only): for
# each target, write its seeds as files, run afl-fuzz for SECONDS, then replay what AFL++
# kept (its queue and its crashes) through the structured runner's checks (`--dir`), and
# print one line of AFL++'s figures per target.
#
# Usage: scripts/afl_sweep.sh OUT_DIR SECONDS [TARGET...]   (default: every target)
# Needs: cargo install cargo-afl --version 0.15.24 --locked   (builds AFL++ with make+gcc)
# The instrumented build goes to target/afl so the normal release build is untouched.
set -eu -o pipefail
out=${1:?usage: scripts/afl_sweep.sh OUT_DIR SECONDS [TARGET...]}
seconds=${2:?usage: scripts/afl_sweep.sh OUT_DIR SECONDS [TARGET...]}
shift 2
command -v cargo-afl >/dev/null || { echo "cargo-afl missing: cargo install cargo-afl --version 0.15.24 --locked" >&2; exit 2; }
cargo build --release -p fuzz
CARGO_TARGET_DIR=target/afl cargo afl build --release -p fuzz --features afl --bin afl
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(./target/release/fuzz list | awk '$NF != "`all`)" {print $1}')
fi
mkdir -p "$out"
summary="$out/summary.txt"
for t in "${targets[@]}"; do
  rm -rf "$out/$t"
  ./target/release/fuzz "$t" --write-seeds "$out/$t/in" >/dev/null
  # AFL_SKIP_CPUFREQ: a VM has no governor to check; AFL_NO_UI: a log, not a screen.
  AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    cargo afl fuzz -i "$out/$t/in" -o "$out/$t/out" -V "$seconds" \
    target/afl/release/afl "$t" >"$out/$t/afl.log" 2>&1 || true
  stats="$out/$t/out/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then
    echo "$t: afl-fuzz did not run, see $out/$t/afl.log" | tee -a "$summary"
    continue
  fi
  field() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$stats"; }
  replay_queue=$(./target/release/fuzz "$t" --dir "$out/$t/out/default/queue" | tail -1 || true)
  replay_crashes=$(./target/release/fuzz "$t" --dir "$out/$t/out/default/crashes" | tail -1 || true)
  line="$t: $(field execs_done) execs in $(field run_time) s ($(field execs_per_sec)/s), edges $(field edges_found) of $(field total_edges), corpus $(field corpus_count) from $(ls "$out/$t/in" | wc -l) seeds, crashes $(field saved_crashes), hangs $(field saved_hangs); replayed queue: $replay_queue; crashes: $replay_crashes"
  echo "$line" | tee -a "$summary"
done
