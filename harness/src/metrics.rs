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
    /// The longest time any honest node that never crashed went without delivering,
    /// from its first delivery until clients stop submitting (a stall still open then
    /// counts up to that moment), in seconds; `None` if no such node delivered. Unlike
    /// `recovery_s`, which ends at the first commit after the last fault, it also sees
    /// the stalls every cycle of leaders brings when a crashed member leads.
    pub longest_stall_s: Option<f64>,
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
    let crashed = scenario.ever_crashed();
    let submit_end = Duration::from_secs(scenario.submit_until_s);
    let longest_stall_s = live
        .iter()
        .filter(|i| !crashed.contains(i))
        .filter_map(|i| longest_stall(&report.logs[*i].progress, submit_end))
        .max()
        .map(|d| d.as_secs_f64());
    RunMetrics {
        longest_stall_s,
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

/// The longest interval without a delivery in `progress` (times of deliveries), from the
/// first delivery until `end` (`None` if nothing was delivered before `end`).
fn longest_stall(progress: &[(Duration, usize)], end: Duration) -> Option<Duration> {
    let times: Vec<Duration> = progress
        .iter()
        .map(|(t, _)| *t)
        .take_while(|t| *t <= end)
        .collect();
    let first = *times.first()?;
    let mut longest = Duration::ZERO;
    let mut previous = first;
    for t in times.iter().skip(1).chain(std::iter::once(&end)) {
        longest = longest.max(t.saturating_sub(previous));
        previous = *t;
    }
    Some(longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn the_longest_stall_counts_from_the_first_delivery_to_the_end() {
        assert_eq!(longest_stall(&[], s(10_000)), None);
        let p = [(s(1_000), 1), (s(1_200), 2), (s(4_200), 3), (s(4_300), 4)];
        assert_eq!(longest_stall(&p, s(5_000)), Some(s(3_000)));
        // A node that stopped delivering: the open stall runs to the end.
        assert_eq!(longest_stall(&p, s(9_000)), Some(s(4_700)));
        // Deliveries after the end are not looked at.
        assert_eq!(longest_stall(&p, s(1_100)), Some(s(100)));
    }
}
