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
    /// changes liveness only, never safety. Default 250 ms; the least such timeout when
    /// `suspect_round_trips` adapts it to the network.
    pub suspect_timeout_ms: u64,
    /// The base view timeout is at least this many measured round trips (the median
    /// duration of recent views that ended with their own QC, see the pacemaker's
    /// `round_trip` module), within `timeout_ms..=max_timeout_ms`; 0 keeps it fixed at
    /// `timeout_ms`. Default 3 (ours): below round trips of a third of `timeout_ms` it
    /// changes nothing; above, live views stop timing out. (5 made recovery from a crash
    /// slower on a 200-600 ms WAN, see docs/benchmarks.md.)
    pub timeout_round_trips: u32,
    /// A suspected leader's view waits at least this many measured round trips (and at
    /// least `suspect_timeout_ms`, at most the base view timeout); 0 keeps it fixed at
    /// `suspect_timeout_ms`. Default 1 (ours): one round trip is the least a live leader
    /// needs to be heard; more only lengthens every view of a dead leader (2 and 3 cost
    /// 10-30 % in end-to-end latency with a crashed and a Byzantine member on a WAN).
    pub suspect_round_trips: u32,
    /// Also suspect the next view's leader when a view whose proposal was seen ends in a
    /// TC it neither signed nor sent a timeout for (a crashed vote collector). Default
    /// true (ours); false keeps only the silent-leader rule, for comparison.
    pub suspect_silent_collector: bool,
    /// The failure of a leader's view does not back off the timeout of the leader's
    /// own next view in the same term, only of the views after it (the backoff grows
    /// as before; with the default two views per leader it applies from the next
    /// leader on).
    /// Default true (ours): a leader that proposes but lets no quorum form (it
    /// equivocates) cost its second view a doubled timeout, 1 s then 2 s in every
    /// rotation (results/byzantine-explained-2026-12-05/). Under a slow network the
    /// timeout still doubles with every failed view, from one leader to the next, so it
    /// still outgrows any delay. false backs off per view, for comparison.
    pub backoff_per_leader: bool,
    /// Chosen leaders of views 1, 2, ... (member ids), in place of the rotation; later
    /// views rotate as usual. Default empty. For Twins testing (Bano et al., OPODIS
    /// 2021), whose cases choose each round's leader; every member must be configured
    /// alike.
    pub leaders: Vec<u16>,
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
            timeout_round_trips: 3,
            suspect_round_trips: 1,
            suspect_silent_collector: true,
            backoff_per_leader: true,
            leaders: Vec::new(),
        }
    }
}

impl Config {
    /// The leader of `view` in `committee`: the chosen one (`leaders`) for views
    /// `1..=leaders.len()`, else the rotation ([`super::messages::leader`]).
    pub fn leader_of(
        &self,
        committee: &primitives::Committee,
        view: primitives::View,
    ) -> primitives::NodeId {
        view.0
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.leaders.get(i))
            .map(|l| primitives::NodeId(*l))
            .unwrap_or_else(|| super::messages::leader(committee, view, self.views_per_leader))
    }

    /// The base view timeout given the measured round trip (`None`: nothing measured
    /// yet): `timeout_round_trips` of it, within `timeout_ms..=max_timeout_ms`.
    pub fn base_timeout(&self, round_trip: Option<Duration>) -> Duration {
        let floor = Duration::from_millis(self.timeout_ms);
        match round_trip {
            Some(rt) if self.timeout_round_trips > 0 => rt
                .saturating_mul(self.timeout_round_trips)
                .clamp(floor, Duration::from_millis(self.max_timeout_ms)),
            _ => floor,
        }
    }

    /// The timeout of a view entered after `consecutive` timed-out views, from the base
    /// timeout: backed off by `timeout_backoff` per view, at most `max_timeout_ms`.
    pub fn view_timeout(&self, base: Duration, consecutive: u32) -> Duration {
        let factor = self
            .timeout_backoff
            .max(1.0)
            .powi(consecutive.min(64) as i32);
        let ms = (base.as_millis() as f64 * factor).min(self.max_timeout_ms as f64);
        Duration::from_millis(ms as u64)
    }

    /// The timeout of a view that depends on a suspected leader, given the measured
    /// round trip and the base timeout: `suspect_round_trips` of it, at least
    /// `suspect_timeout_ms`, at most the base (unless `suspect_timeout_ms` exceeds it).
    pub fn suspect_timeout(&self, round_trip: Option<Duration>, base: Duration) -> Duration {
        let floor = Duration::from_millis(self.suspect_timeout_ms);
        match round_trip {
            Some(rt) if self.suspect_round_trips > 0 => rt
                .saturating_mul(self.suspect_round_trips)
                .min(base)
                .max(floor),
            _ => floor,
        }
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
            "timeout of views led by (or voting to) a leader suspected of silence, ms (the least, when adapted)",
        ),
        (
            "timeout_round_trips",
            "base view timeout in measured round trips (median view), within timeout_ms..=max_timeout_ms; 0: fixed",
        ),
        (
            "suspect_round_trips",
            "suspected leader's view timeout in measured round trips, at least suspect_timeout_ms; 0: fixed",
        ),
        (
            "suspect_silent_collector",
            "also suspect a vote collector missing from the TC of the view before its own",
        ),
        (
            "backoff_per_leader",
            "a failed view backs off the next leader's views, not its own leader's next view",
        ),
        (
            "leaders",
            "chosen leaders (member ids) of views 1, 2, ... in place of the rotation (Twins testing)",
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
        if self.timeout_round_trips > 100 || self.suspect_round_trips > 100 {
            return Err("timeout_round_trips and suspect_round_trips must be at most 100".into());
        }
        crate::leaders::check_chosen_count(&self.leaders)?;
        Ok(())
    }
}
