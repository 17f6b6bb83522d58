//! HotStuff parameters: the `[consensus.hotstuff]` table of the parameters file.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which chain of quorum certificates commits a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CommitRule {
    /// Chained HotStuff (Yin et al., PODC 2019): a block commits when it heads three
    /// blocks of consecutive views, each certified.
    #[default]
    ThreeChain,
    /// The two-chain rule of Jolteon / DiemBFT v4 / HotStuff-2: a block commits when it
    /// and its certified child have consecutive views. Needs the timeout-certificate
    /// voting rule, which this core applies in both modes.
    TwoChain,
}

/// HotStuff configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Commit rule. Default: three-chain.
    pub commit_rule: CommitRule,
    /// Base view timeout. Default 1,000 ms (the Narwhal benchmark's consensus timeout).
    pub timeout_ms: u64,
    /// Multiplier per consecutive timed-out view. Default 2.
    pub timeout_backoff: f64,
    /// Cap on the view timeout. Default 4,000 ms (four base timeouts): the backoff
    /// only has to outgrow the network's delay, and with a 60 s cap a committee that
    /// lost a few views to a partition waited out 8 s and then 16 s views after it
    /// healed (`withhold-batches-while-cut-off`, seeds 1 and 3).
    pub max_timeout_ms: u64,
    /// Most DAG certificate digests one block carries. Default 1,000.
    pub max_block_payload: usize,
    /// Consecutive views each leader keeps before the next takes over (round-robin in
    /// id order). Default 2. With one view per leader and votes sent to the next view's
    /// leader, a crashed member makes every view it leads *and the view before it*
    /// fail; in a committee of 4 with one crashed member that leaves at most two
    /// consecutive certified views, so the three-chain rule (which needs three) would
    /// never commit again. Two views per leader leaves runs of five.
    pub views_per_leader: u64,
    /// Timeout of a view whose leader, or whose next leader (who collects its votes), is
    /// suspected: it let a view of its own end in a timeout certificate without any
    /// proposal seen from it. Such views do not grow the backoff. A suspicion ends
    /// with the leader's next valid proposal. Timeouts are local choices, so this
    /// changes liveness only, never safety. Default 250 ms.
    pub suspect_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            commit_rule: CommitRule::ThreeChain,
            timeout_ms: 1_000,
            timeout_backoff: 2.0,
            max_timeout_ms: 4_000,
            max_block_payload: 1_000,
            views_per_leader: 2,
            suspect_timeout_ms: 250,
        }
    }
}

impl Config {
    /// The timeout of a view entered after `consecutive` timed-out views.
    pub fn view_timeout(&self, consecutive: u32) -> Duration {
        let factor = self
            .timeout_backoff
            .max(1.0)
            .powi(consecutive.min(64) as i32);
        let ms = (self.timeout_ms as f64 * factor).min(self.max_timeout_ms as f64);
        Duration::from_millis(ms as u64)
    }
}

impl crate::ProtocolConfig for Config {
    const PARAMETERS: &'static [(&'static str, &'static str)] = &[
        (
            "commit_rule",
            "three-chain (chained HotStuff, PODC 2019) or two-chain (Jolteon / DiemBFT v4)",
        ),
        (
            "timeout_ms",
            "base view timeout, ms (the Narwhal benchmark's consensus timeout)",
        ),
        (
            "timeout_backoff",
            "timeout multiplier per consecutive timed-out view, 1.0..=16.0",
        ),
        ("max_timeout_ms", "cap on the backed-off view timeout, ms"),
        (
            "max_block_payload",
            "most DAG certificate digests one block carries",
        ),
        (
            "views_per_leader",
            "consecutive views each leader keeps (round-robin in id order)",
        ),
        (
            "suspect_timeout_ms",
            "timeout of views led by (or voting to) a leader suspected of silence, ms",
        ),
    ];

    fn validate(&self) -> Result<(), String> {
        if self.timeout_ms == 0 || self.max_timeout_ms < self.timeout_ms {
            return Err("timeout_ms must be >= 1 and <= max_timeout_ms".into());
        }
        if !(self.timeout_backoff >= 1.0 && self.timeout_backoff <= 16.0) {
            return Err("timeout_backoff must be in 1.0..=16.0".into());
        }
        if self.views_per_leader == 0 || self.suspect_timeout_ms == 0 || self.max_block_payload == 0
        {
            return Err(
                "views_per_leader, suspect_timeout_ms and max_block_payload must be at least 1"
                    .into(),
            );
        }
        Ok(())
    }
}
