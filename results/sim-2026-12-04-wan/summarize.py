#!/usr/bin/env python3
"""Summarise the records of this directory: one line per run set (medians over seeds)."""
import json, glob, os, statistics, sys
d = os.path.dirname(os.path.abspath(__file__))
print("| run set | seeds | pass | e2e p50 ms (median) | recovery s (min-max) | longest stall s (min / median / max) |")
print("|---|---|---|---|---|---|")
for sub in ["hotstuff-before", "hotstuff", "tendermint", "snowman", "bullshark", "tusk", "far-hotstuff"]:
    for f in sorted(glob.glob(f"{d}/{sub}/*.json")):
        rec = json.load(open(f))
        runs = rec["runs"]
        p50 = [r["metrics"]["finality_ms"]["p50"] for r in runs if r["metrics"]["finality_ms"]]
        rec_s = [r["metrics"]["recovery_s"] for r in runs if r["metrics"]["recovery_s"] is not None]
        st = [r["metrics"]["longest_stall_s"] for r in runs if r["metrics"].get("longest_stall_s") is not None]
        print(f"| {sub} | {len(runs)} | {sum(r['passed'] for r in runs)} | {statistics.median(p50):.0f} | "
              f"{min(rec_s):.2f}-{max(rec_s):.2f} | {min(st):.2f} / {statistics.median(st):.2f} / {max(st):.2f} |")
