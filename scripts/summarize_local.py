#!/usr/bin/env python3
"""Print a markdown table of `bftlab local` result records in a folder.

Usage: scripts/summarize_local.py results/local-2026-11-25
Groups records by (protocol, variant, nodes, faults, input rate); the variant is the
`--param` list (older records: the commit rule) and shows, for each
group, the run with the median consensus TPS and the TPS of every run.
"""
import json
import pathlib
import sys


def admission(record):
    """Share of sent transactions refused, and of the schedule held back (newer records)."""
    c = record.get("clients")
    if not c or not c.get("sent"):
        return "-"
    asked = c["sent"] + c.get("held_back", 0)
    return f"{100 * c['refused'] / c['sent']:.0f} % / {100 * c.get('held_back', 0) / asked:.0f} %"


def main(folder):
    groups = {}
    for path in sorted(pathlib.Path(folder).glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("kind") != "bftlab-local":
            continue
        c = record["config"]
        variant = c.get("variant", c.get("commit_rule", "")) or "defaults"
        key = (c["protocol"], variant, c["nodes"], c["faults"], c["input_rate_tx_s"])
        groups.setdefault(key, []).append(record)
    print("| protocol | nodes (crashed) | input tx/s | runs | consensus TPS (median; all) | consensus p50 / p99 | e2e TPS | e2e p50 / p99 | refused / held back | clients stopped | commit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key, runs in sorted(groups.items()):
        runs.sort(key=lambda r: r["consensus"]["tps"])
        median = runs[len(runs) // 2]
        cl, el = median["consensus"]["latency"], median["end_to_end"]["latency"]
        all_tps = "; ".join(f"{r['consensus']['tps']:,.0f}" for r in runs)
        print(
            f"| {key[0]} {key[1]} | {key[2]} ({key[3]}) | {key[4]:,} | {len(runs)} "
            f"| {median['consensus']['tps']:,.0f} ({all_tps}) "
            f"| {cl.get('p50_ms', '-')} / {cl.get('p99_ms', '-')} ms "
            f"| {median['end_to_end']['tps']:,.0f} "
            f"| {el.get('p50_ms', '-')} / {el.get('p99_ms', '-')} ms "
            f"| {admission(median)} "
            f"| {len(median.get('clients_stopped_early', []))} "
            f"| {median['git_commit'][:10]} |"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/local")
