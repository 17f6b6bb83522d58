//! Exported histories: one run written as plain JSON files, so that checkers written
//! outside the project can judge it (the format is documented in docs/histories.md).
//!
//! A run's directory holds `run.json` (the scenario as run, the seed, who was
//! Byzantine, who crashed and who was down at the end), `submitted.jsonl` (every
//! transaction a client sent and was not refused: its BLAKE3 digest, send time and the
//! node it was sent to) and `node-<i>.jsonl` per
//! node (its committed sequence, one position per line, with the BLAKE3 digest of each
//! transaction). Times are simulated milliseconds since the start of the run.

use crate::runner::{Report, SKIPPED};
use crate::scenario::Scenario;
use primitives::Digest;
use serde_json::json;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

/// The version written in `run.json`; bumped when a field changes meaning.
pub const FORMAT: u32 = 1;

fn ms(t: Duration) -> f64 {
    t.as_secs_f64() * 1_000.0
}

/// Write the run of `scenario` with `seed` (its `report`) into `dir` (created if
/// missing; files already there are replaced).
pub fn write(dir: &Path, scenario: &Scenario, seed: u64, report: &Report) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let byzantine: Vec<_> = scenario
        .byzantine
        .iter()
        .map(|b| json!({"node": b.node, "behaviours": b.behaviours}))
        .collect();
    let run = json!({
        "format": FORMAT,
        "scenario": scenario,
        "protocol": scenario.protocol,
        "seed": seed,
        "nodes": report.logs.len(),
        "duration_ms": ms(report.duration),
        "byzantine": byzantine,
        "crashed": scenario.ever_crashed(),
        "down_at_end": report.down,
        "liveness_bound_s": scenario.liveness_bound(),
        "fingerprint": report.fingerprint().to_hex(),
    });
    std::fs::write(dir.join("run.json"), serde_json::to_string_pretty(&run)?)?;

    let mut out = BufWriter::new(std::fs::File::create(dir.join("submitted.jsonl"))?);
    let mut submitted: Vec<(&Duration, Digest, Option<usize>)> = report
        .submitted
        .iter()
        .map(|(tx, at)| (at, Digest::of(tx), crate::checkers::client_of(tx)))
        .collect();
    submitted.sort();
    for (at, digest, client) in submitted {
        let line = json!({"tx": digest.to_hex(), "sent_ms": ms(*at), "node": client});
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;

    for (i, log) in report.logs.iter().enumerate() {
        let mut out = BufWriter::new(std::fs::File::create(dir.join(format!("node-{i}.jsonl")))?);
        for (position, certificate) in log.sequence.iter().enumerate() {
            let (round, author, at) = log.positions.get(position).copied().unwrap_or_default();
            let line = if *certificate == SKIPPED {
                // A position this node skipped by installing a checkpoint.
                // The last of a gap's positions carries the checkpoint's chain hash.
                let chain = log.chains.get(position).filter(|c| **c != SKIPPED);
                json!({
                    "position": position,
                    "skipped": true,
                    "delivered_ms": ms(at),
                    "chain": chain.map(|c| c.to_hex()),
                })
            } else {
                let first = log.first_tx.get(position).copied().unwrap_or_default();
                let end = log
                    .first_tx
                    .get(position + 1)
                    .copied()
                    .unwrap_or(log.transactions.len());
                let transactions: Vec<String> = log
                    .transactions
                    .get(first..end)
                    .unwrap_or_default()
                    .iter()
                    .map(|tx| Digest::of(tx).to_hex())
                    .collect();
                json!({
                    "position": position,
                    "certificate": certificate.to_hex(),
                    "round": round,
                    "author": author,
                    "delivered_ms": ms(at),
                    "chain": log.chains.get(position).map(|c| c.to_hex()),
                    "transactions": transactions,
                })
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::NodeLog;
    use bytes::Bytes;

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_history_holds_every_position_and_transaction_digest() {
        let scenario = Scenario::from_toml(
            "x",
            "name = 'x'\nnodes = 2\nduration_s = 10\nsubmit_until_s = 5\n\
             [[faults]]\nat_s = 1.0\nfault = 'crash'\nnode = 1",
        )
        .unwrap();
        let (a, b, c) = (
            Bytes::from_static(b"tx-a"),
            Bytes::from_static(b"tx-b"),
            Bytes::from_static(b"tx-c"),
        );
        let zero = NodeLog {
            sequence: vec![Digest::of(b"c0"), SKIPPED, SKIPPED, Digest::of(b"c3")],
            chains: vec![
                Digest::of(b"h0"),
                SKIPPED,
                Digest::of(b"h2"),
                Digest::of(b"h3"),
            ],
            first_tx: vec![0, 2, 2, 2],
            positions: vec![
                (1, 0, Duration::from_millis(500)),
                (0, 0, Duration::from_millis(900)),
                (0, 0, Duration::from_millis(900)),
                (7, 1, Duration::from_millis(1_250)),
            ],
            transactions: vec![a.clone(), b.clone(), c.clone()],
            ..NodeLog::default()
        };
        let report = Report {
            scenario: "x".into(),
            seed: 3,
            logs: vec![zero, NodeLog::default()],
            submitted: [
                (a.clone(), Duration::from_millis(100)),
                (b.clone(), Duration::from_millis(50)),
                (c.clone(), Duration::from_millis(200)),
            ]
            .into(),
            down: vec![1],
            byzantine: vec![],
            duration: Duration::from_secs(10),
            packet_faults: Default::default(),
        };
        let dir = std::env::temp_dir().join(format!("bftlab-history-{}", std::process::id()));
        write(&dir, &scenario, 3, &report).unwrap();

        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        assert_eq!(run["seed"], 3);
        assert_eq!(run["crashed"], json!([1]));
        assert_eq!(run["down_at_end"], json!([1]));
        let submitted = lines(&dir.join("submitted.jsonl"));
        assert_eq!(submitted.len(), 3);
        assert_eq!(submitted[0]["tx"], Digest::of(&b).to_hex()); // sorted by send time
        assert_eq!(submitted[0]["sent_ms"], 50.0);

        let node = lines(&dir.join("node-0.jsonl"));
        assert_eq!(node.len(), 4);
        assert_eq!(node[0]["round"], 1);
        assert_eq!(node[0]["delivered_ms"], 500.0);
        let digests = |v: &serde_json::Value| v["transactions"].clone();
        assert_eq!(
            digests(&node[0]),
            json!([Digest::of(&a).to_hex(), Digest::of(&b).to_hex()])
        );
        assert_eq!(node[1]["skipped"], true);
        assert_eq!(node[1]["chain"], serde_json::Value::Null);
        assert_eq!(node[2]["chain"], Digest::of(b"h2").to_hex());
        assert_eq!(node[3]["author"], 1);
        assert_eq!(digests(&node[3]), json!([Digest::of(&c).to_hex()]));
        assert!(lines(&dir.join("node-1.jsonl")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
