//! Tendermint parameters: the `[consensus.tendermint]` table of the parameters file.
//!
//! Timeouts grow linearly with the round (`base + delta x round`), as in the paper's
//! `timeoutPropose(r)` etc.; the defaults are CometBFT's (`timeout_propose = 3s`,
//! `timeout_propose_delta = 500ms`, `timeout_prevote = 1s`, `timeout_prevote_delta =
//! 500ms`, `timeout_precommit = 1s`, `timeout_precommit_delta = 500ms`).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Tendermint configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `timeoutPropose(0)`, ms. Default 3,000 (CometBFT).
    pub timeout_propose_ms: u64,
    /// Added to the propose timeout per round, ms. Default 500 (CometBFT).
    pub timeout_propose_delta_ms: u64,
    /// `timeoutPrevote(0)`, ms. Default 1,000 (CometBFT).
    pub timeout_prevote_ms: u64,
    /// Added to the prevote timeout per round, ms. Default 500 (CometBFT).
    pub timeout_prevote_delta_ms: u64,
    /// `timeoutPrecommit(0)`, ms. Default 1,000 (CometBFT).
    pub timeout_precommit_ms: u64,
    /// Added to the precommit timeout per round, ms. Default 500 (CometBFT).
    pub timeout_precommit_delta_ms: u64,
    /// Most DAG certificate digests one value carries. Default 1,000 (as HotStuff).
    pub max_block_payload: usize,
    /// Round 0 of a height starts only once this node holds a DAG certificate that no
    /// decided value carried yet (or hears from a peer at this height), instead of
    /// deciding empty values back to back while the DAG is idle. CometBFT's
    /// `create_empty_blocks = false`. Default true.
    pub wait_for_certificates: bool,
    /// A node whose (height, round) has not moved for this long broadcasts again what
    /// it signed in the round (best effort), so that a peer that dropped or never got
    /// those messages (a restart, a full buffer, a window it was outside of) can still
    /// reach the thresholds; a peer that hears it from a lower height is helped to catch
    /// up. CometBFT gossips votes continuously (`peer_gossip_sleep_duration = 100ms`);
    /// this core re-sends only when stuck. ms; default 1,000.
    pub regossip_ms: u64,
    /// Chosen proposers of round 0 of heights 1, 2, ... (member ids), in place of the
    /// rotation: in such a height the chosen member and the one the rotation put first
    /// swap places in every round (`ProposerSchedule::with_chosen`); later heights rotate
    /// as usual. Default empty. For Twins
    /// testing (Bano et al., OPODIS 2021), whose cases choose each round's leader;
    /// every member must be configured alike.
    pub leaders: Vec<u16>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout_propose_ms: 3_000,
            timeout_propose_delta_ms: 500,
            timeout_prevote_ms: 1_000,
            timeout_prevote_delta_ms: 500,
            timeout_precommit_ms: 1_000,
            timeout_precommit_delta_ms: 500,
            max_block_payload: 1_000,
            wait_for_certificates: true,
            regossip_ms: 1_000,
            leaders: Vec::new(),
        }
    }
}

/// The three timeouts of the paper (lines 57-67).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimeoutKind {
    /// `OnTimeoutPropose`: no (valid) proposal in time.
    Propose,
    /// `OnTimeoutPrevote`: 2f+1 prevotes but no polka in time.
    Prevote,
    /// `OnTimeoutPrecommit`: 2f+1 precommits but no decision in time.
    Precommit,
}

impl Config {
    /// The timeout of `kind` in `round`: base + delta x round (capped at one hour, so a
    /// far round cannot overflow).
    pub fn timeout(&self, kind: TimeoutKind, round: u64) -> Duration {
        let (base, delta) = match kind {
            TimeoutKind::Propose => (self.timeout_propose_ms, self.timeout_propose_delta_ms),
            TimeoutKind::Prevote => (self.timeout_prevote_ms, self.timeout_prevote_delta_ms),
            TimeoutKind::Precommit => (self.timeout_precommit_ms, self.timeout_precommit_delta_ms),
        };
        let ms = base.saturating_add(delta.saturating_mul(round));
        Duration::from_millis(ms.min(3_600_000))
    }
}

impl crate::ProtocolConfig for Config {
    const PARAMETERS: &'static [(&'static str, &'static str)] = &[
        (
            "timeout_propose_ms",
            "timeoutPropose of round 0, ms (CometBFT timeout_propose)",
        ),
        (
            "timeout_propose_delta_ms",
            "added to the propose timeout per round, ms (CometBFT timeout_propose_delta)",
        ),
        (
            "timeout_prevote_ms",
            "timeoutPrevote of round 0, ms (CometBFT timeout_prevote)",
        ),
        (
            "timeout_prevote_delta_ms",
            "added to the prevote timeout per round, ms (CometBFT timeout_prevote_delta)",
        ),
        (
            "timeout_precommit_ms",
            "timeoutPrecommit of round 0, ms (CometBFT timeout_precommit)",
        ),
        (
            "timeout_precommit_delta_ms",
            "added to the precommit timeout per round, ms (CometBFT timeout_precommit_delta)",
        ),
        (
            "max_block_payload",
            "most DAG certificate digests one value carries",
        ),
        (
            "wait_for_certificates",
            "start a height only once a DAG certificate waits to be ordered (CometBFT create_empty_blocks = false)",
        ),
        (
            "regossip_ms",
            "a node stuck in one (height, round) this long broadcasts again what it signed there, ms",
        ),
        (
            "leaders",
            "chosen proposers (member ids) of round 0 of heights 1, 2, ... in place of the rotation (Twins testing)",
        ),
    ];

    fn validate(&self) -> Result<(), String> {
        crate::leaders::check_chosen_count(&self.leaders)?;
        if self.timeout_propose_ms == 0
            || self.timeout_prevote_ms == 0
            || self.timeout_precommit_ms == 0
        {
            return Err("timeout_propose_ms, timeout_prevote_ms and timeout_precommit_ms must be at least 1".into());
        }
        let hour = 3_600_000;
        if [
            self.timeout_propose_ms,
            self.timeout_prevote_ms,
            self.timeout_precommit_ms,
            self.timeout_propose_delta_ms,
            self.timeout_prevote_delta_ms,
            self.timeout_precommit_delta_ms,
        ]
        .iter()
        .any(|t| *t > hour)
        {
            return Err("timeouts and their deltas must be at most 3600000 ms".into());
        }
        if self.regossip_ms == 0 || self.regossip_ms > hour {
            return Err("regossip_ms must be between 1 and 3600000".into());
        }
        if self.max_block_payload == 0 {
            return Err("max_block_payload must be at least 1".into());
        }
        Ok(())
    }
}
