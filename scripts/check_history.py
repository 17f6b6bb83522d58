#!/usr/bin/env python3
"""An example checker outside the project: judge one run exported by
`bftlab sim SCENARIO --history DIR` (format: docs/histories.md) from its files alone.

    scripts/check_history.py DIR/<scenario>-<protocol>-seed<N>

Checks agreement (no two honest nodes deliver different certificates at one position,
gaps skipped by a checkpoint excepted), no transaction delivered twice by one node, and
that nothing is lost: every transaction sent to a node that never crashed and is not
Byzantine, at least one liveness bound before the end, is committed by every honest node
up at the end (at positions it skipped by a checkpoint, what another node delivered
there counts). Exit status 1 on a violation.
"""
import json
import sys
from pathlib import Path


def main(run_dir: Path) -> int:
    run = json.loads((run_dir / "run.json").read_text())
    byzantine = {b["node"] for b in run["byzantine"]}
    honest = [i for i in range(run["nodes"]) if i not in byzantine]
    histories = {}
    for i in honest:
        with open(run_dir / f"node-{i}.jsonl") as f:
            histories[i] = [json.loads(line) for line in f]
    submitted = set()
    with open(run_dir / "submitted.jsonl") as f:
        for line in f:
            submitted.add(json.loads(line)["tx"])

    violations = []
    # Agreement: position by position, the first honest node that delivered a
    # certificate there fixes it.
    at = {}
    for i in honest:
        for entry in histories[i]:
            if entry.get("skipped"):
                continue
            p = entry["position"]
            first = at.setdefault(p, (i, entry["certificate"]))
            if first[1] != entry["certificate"]:
                violations.append(f"agreement: position {p}: node {first[0]} and node {i} differ")
    # No duplicates within one node's sequence.
    for i in honest:
        seen = set()
        for entry in histories[i]:
            for tx in entry.get("transactions", []):
                if tx in seen:
                    violations.append(f"node {i} delivered transaction {tx[:16]} twice")
                seen.add(tx)

    # Nothing lost.
    cutoff_ms = run["duration_ms"] - 1000 * run["liveness_bound_s"]
    unreliable = byzantine | set(run["crashed"])
    owed = set()
    with open(run_dir / "submitted.jsonl") as f:
        for line in f:
            t = json.loads(line)
            if t["sent_ms"] <= cutoff_ms and t["node"] is not None and t["node"] not in unreliable:
                owed.add(t["tx"])
    delivered_at = {}
    for i in honest:
        for entry in histories[i]:
            if not entry.get("skipped"):
                delivered_at.setdefault(entry["position"], entry["transactions"])
    for i in honest:
        if i in run["down_at_end"]:
            continue
        committed = set()
        for entry in histories[i]:
            committed.update(delivered_at.get(entry["position"], []) if entry.get("skipped")
                             else entry["transactions"])
        lost = owed - committed
        if lost:
            violations.append(f"node {i} never committed {len(lost)} transaction(s) it owed")

    print(f"{run_dir.name}: protocol {run['protocol']}, seed {run['seed']}, "
          f"{run['nodes']} nodes, byzantine {sorted(byzantine)}, down at end {run['down_at_end']}")
    for i in honest:
        if i in run["down_at_end"]:
            continue
        committed = {tx for e in histories[i] for tx in e.get("transactions", [])}
        print(f"  node {i}: {len(histories[i])} positions, "
              f"{len(committed & submitted)} of {len(submitted)} submitted transactions")
    for v in violations[:20]:
        print("  VIOLATION", v)
    print("  verdict:", "FAIL" if violations else "pass")
    return 1 if violations else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1])))
