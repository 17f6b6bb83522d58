//! Safety and liveness checkers over a [`Report`].

use crate::runner::{Report, SKIPPED};
use crate::scenario::Scenario;
use std::collections::BTreeSet;
use std::time::Duration;

/// A property that failed, with where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two honest nodes committed different certificates at the same position.
    Agreement {
        /// The nodes.
        nodes: (usize, usize),
        /// The first position where they differ.
        position: usize,
    },
    /// Two honest nodes delivered from different consensus blocks at the same height
    /// (view, height or round): their cores committed conflicting blocks, even if their
    /// sequences agree so far (one may have installed the other's by state transfer).
    ConflictingBlocks {
        /// The nodes.
        nodes: (usize, usize),
        /// The lowest height where they differ.
        height: u64,
    },
    /// A node committed a transaction twice, skipped positions of its sequence,
    /// delivered a different certificate at a position after a restart, or delivered
    /// from two blocks at one height.
    Integrity {
        /// The node.
        node: usize,
    },
    /// A node committed a transaction no client submitted.
    Validity {
        /// The node.
        node: usize,
    },
    /// A node skipped positions by a checkpoint whose chain hash differs from another
    /// honest node's chain hash at the gap's end: it skipped to another sequence.
    Checkpoint {
        /// The node that skipped, and the node it disagrees with.
        nodes: (usize, usize),
        /// The last position of the gap.
        position: usize,
    },
    /// A node committed nothing new within the bound after stabilisation.
    Liveness {
        /// The node.
        node: usize,
    },
}

/// The verdict on one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Everything that failed (empty: the run passed).
    pub violations: Vec<Violation>,
}

impl Verdict {
    /// Whether every property held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Judge a run. Byzantine nodes are held to nothing; nodes down at the end are not
/// held to liveness; every other node's commits are held to safety.
pub fn check(scenario: &Scenario, report: &Report) -> Verdict {
    let mut violations = Vec::new();
    let n = report.logs.len();
    let honest: Vec<usize> = (0..n).filter(|i| !report.byzantine.contains(i)).collect();
    for (k, &i) in honest.iter().enumerate() {
        for &j in &honest[k + 1..] {
            let (a, b) = (&report.logs[i].sequence, &report.logs[j].sequence);
            // Positions one of them skipped by a checkpoint are compared below, by the
            // chain hash at the gap's end.
            if let Some(position) = (0..a.len().min(b.len()))
                .find(|p| a[*p] != b[*p] && a[*p] != SKIPPED && b[*p] != SKIPPED)
            {
                violations.push(Violation::Agreement {
                    nodes: (i, j),
                    position,
                });
            }
        }
        for &j in &honest[k + 1..] {
            let (a, b) = (&report.logs[i].blocks, &report.logs[j].blocks);
            if let Some((height, _)) = a
                .iter()
                .find(|(h, block)| b.get(h).is_some_and(|x| x != *block))
            {
                violations.push(Violation::ConflictingBlocks {
                    nodes: (i, j),
                    height: *height,
                });
            }
        }
        for &j in &honest {
            if j == i {
                continue;
            }
            for &(_, to, chain) in &report.logs[i].skips {
                let end = to as usize - 1;
                let theirs = report.logs[j].chains.get(end).copied();
                if theirs.is_some_and(|c| c != SKIPPED && c != chain) {
                    violations.push(Violation::Checkpoint {
                        nodes: (i, j),
                        position: end,
                    });
                }
            }
        }
        let mut seen = BTreeSet::new();
        let log = &report.logs[i];
        if log.redelivery_conflicts > 0
            || log.block_conflicts > 0
            || log.gaps > 0
            || !log.transactions.iter().all(|t| seen.insert(t))
        {
            violations.push(Violation::Integrity { node: i });
        }
        if !report.logs[i]
            .transactions
            .iter()
            .all(|t| report.submitted.contains_key(t))
        {
            violations.push(Violation::Validity { node: i });
        }
    }
    let from = Duration::from_secs_f64(scenario.stabilised_at());
    let bound = from + Duration::from_secs(scenario.liveness_bound());
    let submit_end = Duration::from_secs(scenario.submit_until_s);
    let live = report.honest_up();
    // Clients whose transactions must all commit: those of nodes never crashed.
    let crashed = scenario.ever_crashed();
    let reliable: Vec<usize> = live
        .iter()
        .copied()
        .filter(|j| !crashed.contains(j))
        .collect();
    for &i in &live {
        // Something new must be committed after stabilisation, within the bound, while
        // clients are still submitting (or while earlier submissions are pending).
        let progressed = report.logs[i]
            .progress
            .iter()
            .any(|(t, _)| *t >= from && *t <= bound.max(from + Duration::from_millis(1)));
        if !progressed && from < submit_end {
            violations.push(Violation::Liveness { node: i });
            continue;
        }
        // No honest node may stay stuck: by the end it must have committed at least
        // what the most advanced honest node had committed one bound earlier.
        let cutoff = report
            .duration
            .saturating_sub(Duration::from_secs(scenario.liveness_bound()));
        let reached = |log: &crate::runner::NodeLog, at: Duration| {
            log.progress
                .iter()
                .take_while(|(t, _)| *t <= at)
                .last()
                .map(|(_, n)| *n)
                .unwrap_or(0)
        };
        let target = live
            .iter()
            .map(|j| reached(&report.logs[*j], cutoff))
            .max()
            .unwrap_or(0);
        // What this node skipped by a checkpoint (explicitly) counts as committed.
        let skipped = skipped_transactions(report, i, &live);
        if report.logs[i].transactions.len() + skipped.len() < target {
            violations.push(Violation::Liveness { node: i });
            continue;
        }
        // Nothing submitted in time is left behind: every transaction a client of a node
        // that was never crashed or Byzantine sent at least one bound before the end is
        // committed by every honest live node. (A crash may lose what its node had
        // accepted but not yet put in a certified batch.)
        let committed: BTreeSet<&bytes::Bytes> = report.logs[i].transactions.iter().collect();
        let missing = report.submitted.iter().any(|(tx, sent)| {
            *sent <= cutoff
                && client_of(tx).is_some_and(|c| reliable.contains(&c))
                && !committed.contains(tx)
                && !skipped.contains(tx)
        });
        if missing {
            violations.push(Violation::Liveness { node: i });
        }
    }

    Verdict { violations }
}

/// The transactions at the positions node `i` skipped by checkpoints, as another node
/// of `others` that delivered those positions itself committed them.
fn skipped_transactions<'a>(
    report: &'a Report,
    i: usize,
    others: &[usize],
) -> BTreeSet<&'a bytes::Bytes> {
    let mut out = BTreeSet::new();
    for &(from, to, _) in &report.logs[i].skips {
        let (from, to) = (from as usize, to as usize);
        let witness = others
            .iter()
            .filter(|j| **j != i)
            .map(|j| &report.logs[*j])
            .find(|log| {
                log.sequence.len() >= to && log.sequence[from..to].iter().all(|d| *d != SKIPPED)
            });
        let Some(log) = witness else { continue };
        let start = log.first_tx[from];
        let end = log
            .first_tx
            .get(to)
            .copied()
            .unwrap_or(log.transactions.len());
        out.extend(log.transactions[start..end].iter());
    }
    out
}

/// The client (node index) that made a harness transaction: its first 8 bytes.
pub(crate) fn client_of(tx: &[u8]) -> Option<usize> {
    let id: [u8; 8] = tx.get(..8)?.try_into().ok()?;
    usize::try_from(u64::from_be_bytes(id)).ok()
}
