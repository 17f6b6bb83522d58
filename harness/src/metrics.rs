//! What a run measured, in simulated time.

use crate::runner::Report;
use crate::scenario::Scenario;
use serde::Serialize;
use std::time::Duration;

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// How many samples.
    pub samples: usize,
}

impl Percentiles {
    /// Percentiles of `samples` (nearest rank); `None` when there are none.
    pub fn of(mut samples: Vec<Duration>) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        samples.sort();
        let rank = |p: f64| {
            let k = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[k - 1].as_secs_f64() * 1e3
        };
        Some(Percentiles {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: rank(1.0),
            samples: samples.len(),
        })
    }
}

/// The metrics of one run. Every time is simulated time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunMetrics {
    /// Client send to commit, over every (honest live node, transaction it committed).
    pub finality_ms: Option<Percentiles>,
    /// Transactions the slowest honest live node committed.
    pub committed_transactions: usize,
    /// Those per second of the submission window (0.5 s to `submit_until_s`).
    pub throughput_tps: f64,
    /// The same in transaction bytes per second.
    pub throughput_bytes_per_s: f64,
    /// The protocol's progress measure (the first of its counters, e.g. `view`, `height`
    /// or `round`) and its highest value on an honest live node.
    pub progress: Option<(String, u64)>,
    /// Highest DAG round reached by an honest node.
    pub dag_rounds: u64,
    /// Blocks the most advanced honest node committed.
    pub blocks_committed: u64,
    /// Messages all nodes sent to peers, per committed transaction.
    pub messages_per_tx: f64,
    /// Payload bytes all nodes sent to peers, per committed transaction.
    pub bytes_per_tx: f64,
    /// From the last fault to the moment the last honest live node committed again, in
    /// seconds; `None` without faults, or if some node never recovered.
    pub recovery_s: Option<f64>,
}

/// Measure a run.
pub fn measure(scenario: &Scenario, report: &Report) -> RunMetrics {
    let live = report.honest_up();
    let mut latencies = Vec::new();
    for &i in &live {
        let log = &report.logs[i];
        let mut entry = 0;
        for (k, tx) in log.transactions.iter().enumerate() {
            while entry < log.progress.len() && log.progress[entry].1 <= k {
                entry += 1;
            }
            let (Some((at, _)), Some(sent)) = (log.progress.get(entry), report.submitted.get(tx))
            else {
                continue;
            };
            latencies.push(at.saturating_sub(*sent));
        }
    }
    let committed = live
        .iter()
        .map(|i| report.logs[*i].transactions.len())
        .min()
        .unwrap_or(0);
    let window = (scenario.submit_until_s as f64 - 0.5).max(0.5);
    let tps = committed as f64 / window;
    let max_of = |f: &dyn Fn(usize) -> u64| live.iter().map(|i| f(*i)).max().unwrap_or(0);
    let messages: u64 = report.logs.iter().map(|l| l.counters.messages_out).sum();
    let bytes: u64 = report.logs.iter().map(|l| l.counters.bytes_out).sum();
    let per_tx = |total: u64| {
        if committed == 0 {
            0.0
        } else {
            total as f64 / committed as f64
        }
    };
    let recovery_s = if scenario.faults.is_empty() {
        None
    } else {
        let from = Duration::from_secs_f64(scenario.stabilised_at());
        live.iter()
            .map(|i| {
                report.logs[*i]
                    .progress
                    .iter()
                    .find(|(t, _)| *t >= from)
                    .map(|(t, _)| (*t - from).as_secs_f64())
            })
            .try_fold(0.0f64, |acc, r| r.map(|r| acc.max(r)))
    };
    RunMetrics {
        finality_ms: Percentiles::of(latencies),
        committed_transactions: committed,
        throughput_tps: tps,
        throughput_bytes_per_s: tps * scenario.tx_size as f64,
        progress: live
            .iter()
            .filter_map(|i| report.logs[*i].counters.core.first())
            .max_by_key(|(_, v)| *v)
            .map(|(name, v)| (name.to_string(), *v)),
        dag_rounds: max_of(&|i| report.logs[i].counters.dag_round),
        blocks_committed: max_of(&|i| report.logs[i].counters.blocks_committed),
        messages_per_tx: per_tx(messages),
        bytes_per_tx: per_tx(bytes),
        recovery_s,
    }
}
