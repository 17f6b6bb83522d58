#!/usr/bin/env python3
"""List `bftlab local` records of one or more folders in the order they ran.

Usage: scripts/list_local.py results/X/a results/X/b ...
One markdown row per record: folder, start time, consensus and end-to-end tx/s and
latency (p50 / p99), transactions refused by admission control.
"""
import json
import pathlib
import sys


def main(folders):
    rows = []
    for folder in folders:
        for path in pathlib.Path(folder).glob("*.json"):
            r = json.loads(path.read_text())
            if r.get("kind") != "bftlab-local":
                continue
            c, e = r["consensus"], r["end_to_end"]
            rows.append((r["start_unix_ms"], pathlib.Path(folder).name, c, e, r.get("clients", {})))
    rows.sort(key=lambda row: row[0])
    print("| # | binary | consensus tx/s | consensus p50 / p99 ms | e2e tx/s | e2e p50 / p99 ms | refused |")
    print("|---|---|---|---|---|---|---|")
    for i, (_, name, c, e, clients) in enumerate(rows, 1):
        cl, el = c["latency"], e["latency"]
        print(
            f"| {i} | {name} | {c['tps']:,.0f} | {cl['p50_ms']:.1f} / {cl['p99_ms']:.1f} | "
            f"{e['tps']:,.0f} | {el['p50_ms']:.1f} / {el['p99_ms']:.1f} | {clients.get('refused', '-'):,} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
