#!/usr/bin/env python3
"""Print a markdown table of `bftlab sim` records (one row per scenario: the median
over its seeds, with the range where seeds differ).

    scripts/summarize_sim.py results/sim-suite-2026-11-25
"""
import json
import statistics
import sys
from pathlib import Path


def fmt(values, digits=0):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    med = statistics.median(values)
    text = f"{med:,.{digits}f}"
    lo, hi = min(values), max(values)
    if round(lo, digits) != round(hi, digits):
        text += f" ({lo:,.{digits}f}-{hi:,.{digits}f})"
    return text


def main(folder):
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("kind") != "bftlab-sim":
            continue
        runs = record["runs"]
        m = [r["metrics"] for r in runs]
        finality = [x["finality_ms"] or {} for x in m]
        verdicts = [r["passed"] for r in runs]
        broken = sum(
            any(v.startswith(("Agreement", "ConflictingBlocks")) for v in r["violations"])
            for r in runs
        )
        if record.get("expect_violation"):
            verdict = f"{broken}/{len(runs)} break agreement (expected)"
        else:
            verdict = f"{sum(verdicts)}/{len(runs)} pass"
        rows.append((
            Path(record["file"]).name,
            verdict,
            fmt([x["throughput_tps"] for x in m]),
            fmt([f.get("p50") for f in finality]),
            fmt([f.get("p99") for f in finality]),
            fmt([x["blocks_committed"] for x in m]),
            fmt([x["messages_per_tx"] for x in m], 1),
            fmt([x["recovery_s"] for x in m], 2),
            fmt([r["wall_seconds"] for r in runs], 1),
        ))
    print("| scenario | seeds | tx/s | finality p50 ms | p99 ms | blocks | msgs/tx | recovery s | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/sim-suite")
