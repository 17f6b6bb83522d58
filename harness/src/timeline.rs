//! Commits over simulated time, and the faults that shaped them: what a run's
//! "commits over time" figure is drawn from.

use crate::runner::Report;
use crate::scenario::{FaultKind, Scenario};
use serde::Serialize;
use std::time::Duration;

/// Transactions committed per interval of simulated time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommitTimeline {
    /// The interval, in seconds.
    pub bucket_s: f64,
    /// Per interval from time 0, the transactions the most advanced honest node had
    /// committed by its end minus those by its start: the committee's progress, which a
    /// crashed or cut-off minority does not hold back (its own nodes catch up later).
    pub committed: Vec<u64>,
}

/// The commit timeline of `report` in intervals of `bucket` (Byzantine nodes left out;
/// a node that crashed and restarted counts, with its sequence carried over).
pub fn commit_timeline(report: &Report, bucket: Duration) -> CommitTimeline {
    let bucket = bucket.max(Duration::from_millis(1));
    let buckets = report.duration.as_nanos().div_ceil(bucket.as_nanos()) as usize;
    // Per interval end, the highest count any honest node had reached by then.
    let mut reached = vec![0usize; buckets];
    for (i, log) in report.logs.iter().enumerate() {
        if report.byzantine.contains(&i) {
            continue;
        }
        let mut entry = 0;
        let mut count = 0;
        for (k, slot) in reached.iter_mut().enumerate() {
            let end = bucket * (k as u32 + 1);
            while entry < log.progress.len() && log.progress[entry].0 < end {
                count = count.max(log.progress[entry].1);
                entry += 1;
            }
            *slot = (*slot).max(count);
        }
    }
    let mut committed = Vec::with_capacity(buckets);
    let mut before = 0;
    for now in reached {
        committed.push(now.saturating_sub(before) as u64);
        before = before.max(now);
    }
    CommitTimeline {
        bucket_s: bucket.as_secs_f64(),
        committed,
    }
}

/// A fault of the scenario's timeline, in words.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultEvent {
    /// When, in simulated seconds.
    pub at_s: f64,
    /// What, briefly (`crash 3`, `partition 0,1 | 2,3`, `heal`).
    pub what: String,
}

/// The scenario's faults as events, in time order.
pub fn fault_events(scenario: &Scenario) -> Vec<FaultEvent> {
    let list = |nodes: &[usize]| {
        nodes
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut events: Vec<FaultEvent> = scenario
        .faults
        .iter()
        .map(|f| FaultEvent {
            at_s: f.at_s,
            what: match &f.kind {
                FaultKind::Partition { a, b } => format!("partition {} | {}", list(a), list(b)),
                FaultKind::HealAll => "heal".into(),
                FaultKind::Crash { node } => format!("crash {node}"),
                FaultKind::Restart { node } => format!("restart {node}"),
                FaultKind::Slow { a, b, latency_ms } => {
                    format!("slow {} | {} {latency_ms} ms", list(a), list(b))
                }
                FaultKind::IsolateOutbound { node } => format!("mute {node}"),
                FaultKind::IsolateInbound { node } => format!("deafen {node}"),
            },
        })
        .collect();
    events.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::NodeLog;

    fn log(progress: &[(u64, usize)]) -> NodeLog {
        NodeLog {
            progress: progress
                .iter()
                .map(|(ms, n)| (Duration::from_millis(*ms), *n))
                .collect(),
            ..NodeLog::default()
        }
    }

    #[test]
    fn the_timeline_follows_the_most_advanced_honest_node() {
        let report = Report {
            scenario: "t".into(),
            seed: 1,
            logs: vec![
                log(&[(100, 10), (1_500, 30), (3_200, 35)]),
                // Behind, then catching up: never counted twice.
                log(&[(2_500, 30), (3_100, 35)]),
                // Byzantine: ignored however much it claims.
                log(&[(50, 1_000)]),
            ],
            submitted: Default::default(),
            down: vec![],
            byzantine: vec![2],
            duration: Duration::from_secs(4),
            packet_faults: Default::default(),
        };
        let t = commit_timeline(&report, Duration::from_secs(1));
        assert_eq!(t.committed, vec![10, 20, 0, 5]);
        assert_eq!(t.committed.iter().sum::<u64>(), 35);
    }

    #[test]
    fn faults_read_as_events_in_time_order() {
        let scenario = Scenario::from_toml(
            "s",
            r#"
name = "s"
nodes = 4
duration_s = 10
submit_until_s = 8
[[faults]]
at_s = 5.0
fault = "heal-all"
[[faults]]
at_s = 2.0
fault = "partition"
a = [0, 1]
b = [2, 3]
[[faults]]
at_s = 3.0
fault = "crash"
node = 3
"#,
        )
        .unwrap();
        let events = fault_events(&scenario);
        let whats: Vec<&str> = events.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(whats, ["partition 0,1 | 2,3", "crash 3", "heal"]);
        assert_eq!(events[0].at_s, 2.0);
    }
}
