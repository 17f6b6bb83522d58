//! Parameters of the DAG-native cores: `[consensus.bullshark]` and `[consensus.tusk]`.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Bullshark's parameters (the partially synchronous version's timing rule).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Apply the DAG timing rule: hold the DAG proposer in an anchor round until the
    /// anchor arrives, and in the voting round until f+1 weight voted for it or 2f+1
    /// did not (or `leader_timeout_ms` passed). Without it Bullshark still orders
    /// safely but, like Tusk, commits only the anchors the DAG happens to support.
    /// Default true (the paper's partially synchronous protocol).
    pub timing_rule: bool,
    /// How long the timing rule waits, ms. The paper leaves the value open; the default,
    /// 500, is five times the mempool's `max_header_delay_ms` default (100) and several
    /// WAN round trips: a live leader's anchor arrives well inside it, a crashed one
    /// costs it once per anchor round it leads.
    pub leader_timeout_ms: u64,
    /// Chosen leaders (member ids) of the anchor rounds 2, 4, 6, ... in place of the
    /// rotation; later anchor rounds rotate as usual. Default empty. For Twins testing
    /// (Bano et al., OPODIS 2021), whose cases choose each round's leader; every member
    /// must be configured alike.
    pub leaders: Vec<u16>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timing_rule: true,
            leader_timeout_ms: 500,
            leaders: Vec::new(),
        }
    }
}

impl Config {
    /// The timing rule's wait.
    pub fn leader_timeout(&self) -> Duration {
        Duration::from_millis(self.leader_timeout_ms)
    }
}

impl crate::ProtocolConfig for Config {
    const PARAMETERS: &'static [(&'static str, &'static str)] = &[
        (
            "timing_rule",
            "hold the DAG proposer for the anchor and for the votes on it (Bullshark's partially synchronous timing rule)",
        ),
        (
            "leader_timeout_ms",
            "how long the timing rule waits for the anchor or the votes on it, ms (our default; the paper gives none)",
        ),
        (
            "leaders",
            "chosen leaders (member ids) of anchor rounds 2, 4, 6, ... in place of the rotation (Twins testing)",
        ),
    ];

    fn validate(&self) -> Result<(), String> {
        if self.leader_timeout_ms == 0 || self.leader_timeout_ms > 3_600_000 {
            return Err("leader_timeout_ms must be between 1 and 3600000".into());
        }
        crate::leaders::check_chosen_count(&self.leaders)?;
        Ok(())
    }
}

/// Tusk's parameters: only Twins testing's chosen leaders (it is asynchronous: no
/// timeouts; its leader schedule is the shared weighted rotation, see the module
/// documentation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuskConfig {
    /// Chosen leaders (member ids) of the anchor rounds 2, 4, 6, ... in place of the
    /// rotation, as Bullshark's `leaders`. Default empty.
    pub leaders: Vec<u16>,
}

impl crate::ProtocolConfig for TuskConfig {
    const PARAMETERS: &'static [(&'static str, &'static str)] = &[(
        "leaders",
        "chosen leaders (member ids) of anchor rounds 2, 4, 6, ... in place of the rotation (Twins testing)",
    )];

    fn validate(&self) -> Result<(), String> {
        crate::leaders::check_chosen_count(&self.leaders)
    }
}
