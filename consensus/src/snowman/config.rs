//! Snowman parameters: the `[consensus.snowman]` table of the parameters file.
//!
//! The consensus parameters carry avalanchego's names and defaults (`snow/consensus/
//! snowball/parameters.go`: K 20, AlphaPreference 15, AlphaConfidence 15, Beta 20,
//! ConcurrentRepolls 4) and are validated by its rules. A sample cannot be larger than
//! the committee: [`Config::effective`] scales K and the alphas down for a committee
//! whose total weight is below K (see there).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Snowman configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Sample size of a poll, in units of weight (avalanchego `K`). Default 20.
    pub k: u64,
    /// Votes in a poll that move the preference (avalanchego `AlphaPreference`).
    /// Default 15.
    pub alpha_preference: u64,
    /// Votes in a poll that count towards confidence (avalanchego `AlphaConfidence`).
    /// Default 15.
    pub alpha_confidence: u64,
    /// Consecutive successful polls that accept (avalanchego `Beta`). Default 20.
    pub beta: u64,
    /// Polls in flight at once (avalanchego `ConcurrentRepolls`). Default 4.
    pub concurrent_repolls: u64,
    /// A sampled peer that has not answered a poll by then counts as no vote, ms.
    /// Default 1,000 (ours; avalanchego adapts its request timeout to the network).
    pub poll_timeout_ms: u64,
    /// How long after a block became this node's preferred tip the next proposer in
    /// the height's order may build on it instead of the one before (proposervm's
    /// proposer windows), ms. Default 5,000 (proposervm's `WindowDuration`).
    pub proposer_window_ms: u64,
    /// Most DAG certificate digests one block carries. Default 1,000 (as HotStuff).
    pub max_block_payload: usize,
    /// Most undecided blocks above the last accepted one that a proposer builds on
    /// (a pipeline depth; blocks keep being decided while the next are proposed).
    /// Default 8 (ours).
    pub max_processing: u64,
    /// Chosen proposers of the first window of heights 1, 2, ... (member ids), in place
    /// of the rotation: in such a height the chosen member and the one the rotation put
    /// first swap windows (`ProposerSchedule::with_chosen`); later heights rotate as
    /// usual. Default empty. For
    /// Twins testing (Bano et al., OPODIS 2021), whose cases choose each round's
    /// leader; every member must be configured alike.
    pub leaders: Vec<u16>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            k: 20,
            alpha_preference: 15,
            alpha_confidence: 15,
            beta: 20,
            concurrent_repolls: 4,
            poll_timeout_ms: 1_000,
            proposer_window_ms: 5_000,
            max_block_payload: 1_000,
            max_processing: 8,
            leaders: Vec::new(),
        }
    }
}

/// The consensus parameters a committee runs with (after scaling, see
/// [`Config::effective`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effective {
    /// Sample size, in units of weight.
    pub k: u64,
    /// Votes that move the preference.
    pub alpha_preference: u64,
    /// Votes that count towards confidence.
    pub alpha_confidence: u64,
    /// Consecutive successful polls that accept.
    pub beta: u64,
    /// Polls in flight.
    pub concurrent_repolls: u64,
    /// Every poll asks the whole committee (K at its total weight): nothing random
    /// breaks an even split, so Snowball's tie-break applies
    /// ([`super::Snowball::record_poll`]).
    pub polls_everyone: bool,
}

/// The avalanchego rules, on any (K, alphas, beta, repolls).
fn check(k: u64, alpha_p: u64, alpha_c: u64, beta: u64, repolls: u64) -> Result<(), String> {
    if k == 0 {
        return Err("k must be at least 1".into());
    }
    if alpha_p <= k / 2 {
        return Err(format!(
            "k = {k}, alpha_preference = {alpha_p}: it must be more than k/2 (k/2 < alpha_preference <= alpha_confidence <= k)"
        ));
    }
    if alpha_c < alpha_p {
        return Err(format!(
            "alpha_preference = {alpha_p}, alpha_confidence = {alpha_c}: alpha_confidence must be at least alpha_preference"
        ));
    }
    if alpha_c > k {
        return Err(format!(
            "k = {k}, alpha_confidence = {alpha_c}: alpha_confidence must be at most k"
        ));
    }
    if beta == 0 {
        return Err("beta must be at least 1".into());
    }
    if repolls == 0 || repolls > beta {
        return Err(format!(
            "beta = {beta}, concurrent_repolls = {repolls}: it must be in 1..=beta"
        ));
    }
    Ok(())
}

impl Config {
    /// The parameters for a committee of total weight `total` whose quorum (2f+1 by
    /// weight) is `quorum`.
    ///
    /// A poll samples K units of weight without replacement, so K cannot exceed the
    /// total weight. When it does, the sample is the whole committee (K' = total) and
    /// each alpha keeps its fraction of K, rounded up, but at most the quorum and at
    /// least a majority: `alpha' = max(floor(K'/2) + 1, min(quorum, ceil(alpha * K' /
    /// K)))`. The cap keeps a whole-committee poll live with f members silent or
    /// crashed, as the 3f+1 cores are (the fraction alone, 3/4 by default, would need
    /// 8 of 10 and stall with 3 of 10 down). With the defaults: 4 members of weight 1
    /// poll all 4 with alpha 3; 7 poll 7 with alpha 5; 10 poll 10 with alpha 7. Beta
    /// and the repolls are unchanged.
    pub fn effective(&self, total: u64, quorum: u64) -> Effective {
        let (k, alpha_preference, alpha_confidence) = if total >= self.k || total == 0 {
            (self.k, self.alpha_preference, self.alpha_confidence)
        } else {
            let scale = |a: u64| {
                let scaled = (u128::from(a) * u128::from(total)).div_ceil(u128::from(self.k));
                u64::try_from(scaled)
                    .unwrap_or(total)
                    .min(quorum)
                    .max(total / 2 + 1)
            };
            let p = scale(self.alpha_preference).min(total);
            let c = scale(self.alpha_confidence).max(p).min(total);
            (total, p, c)
        };
        Effective {
            k,
            alpha_preference,
            alpha_confidence,
            beta: self.beta,
            concurrent_repolls: self.concurrent_repolls,
            polls_everyone: total > 0 && k >= total,
        }
    }

    /// The poll timeout.
    pub fn poll_timeout(&self) -> Duration {
        Duration::from_millis(self.poll_timeout_ms)
    }

    /// The proposer window.
    pub fn proposer_window(&self) -> Duration {
        Duration::from_millis(self.proposer_window_ms)
    }
}

impl crate::ProtocolConfig for Config {
    const PARAMETERS: &'static [(&'static str, &'static str)] = &[
        (
            "k",
            "poll sample size in units of weight (avalanchego K; scaled to the committee when larger)",
        ),
        (
            "alpha_preference",
            "votes in a poll that move the preference (avalanchego AlphaPreference)",
        ),
        (
            "alpha_confidence",
            "votes in a poll that count towards confidence (avalanchego AlphaConfidence)",
        ),
        (
            "beta",
            "consecutive successful polls that accept a block (avalanchego Beta)",
        ),
        (
            "concurrent_repolls",
            "polls in flight at once (avalanchego ConcurrentRepolls)",
        ),
        (
            "poll_timeout_ms",
            "a sampled peer silent this long counts as no vote, ms",
        ),
        (
            "proposer_window_ms",
            "after this long on a tip the next proposer of the height may build on it (proposervm WindowDuration), ms",
        ),
        (
            "max_block_payload",
            "most DAG certificate digests one block carries",
        ),
        (
            "max_processing",
            "most undecided blocks above the last accepted a proposer builds on",
        ),
        (
            "leaders",
            "chosen proposers (member ids) of the first window of heights 1, 2, ... in place of the rotation (Twins testing)",
        ),
    ];

    fn validate(&self) -> Result<(), String> {
        crate::leaders::check_chosen_count(&self.leaders)?;
        check(
            self.k,
            self.alpha_preference,
            self.alpha_confidence,
            self.beta,
            self.concurrent_repolls,
        )?;
        let hour = 3_600_000;
        if self.poll_timeout_ms == 0 || self.poll_timeout_ms > hour {
            return Err("poll_timeout_ms must be between 1 and 3600000".into());
        }
        if self.proposer_window_ms == 0 || self.proposer_window_ms > hour {
            return Err("proposer_window_ms must be between 1 and 3600000".into());
        }
        if self.max_block_payload == 0 {
            return Err("max_block_payload must be at least 1".into());
        }
        if self.max_processing == 0 || self.max_processing > 1_000 {
            return Err("max_processing must be between 1 and 1000".into());
        }
        if self.k > 10_000 || self.beta > 10_000 {
            return Err("k and beta must be at most 10000".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProtocolConfig;

    fn with(f: impl Fn(&mut Config)) -> Result<(), String> {
        let mut c = Config::default();
        f(&mut c);
        c.validate()
    }

    #[test]
    fn each_avalanchego_rule_refuses_what_breaks_it() {
        assert!(Config::default().validate().is_ok());
        let e = with(|c| c.alpha_preference = 10).unwrap_err();
        assert!(e.contains("more than k/2"), "{e}");
        let e = with(|c| c.alpha_confidence = 14).unwrap_err();
        assert!(e.contains("at least alpha_preference"), "{e}");
        let e = with(|c| {
            c.alpha_preference = 18;
            c.alpha_confidence = 21
        })
        .unwrap_err();
        assert!(e.contains("at most k"), "{e}");
        let e = with(|c| c.concurrent_repolls = 0).unwrap_err();
        assert!(e.contains("1..=beta"), "{e}");
        let e = with(|c| c.concurrent_repolls = 21).unwrap_err();
        assert!(e.contains("1..=beta"), "{e}");
        assert!(with(|c| c.beta = 0).is_err());
        assert!(with(|c| c.k = 0).is_err());
        assert!(with(|c| c.poll_timeout_ms = 0).is_err());
        assert!(with(|c| c.max_block_payload = 0).is_err());
        // Scaled parameters always obey the rules.
        for total in 1..40 {
            let p = Config::default().effective(total, total * 2 / 3 + 1);
            assert!(
                check(
                    p.k,
                    p.alpha_preference,
                    p.alpha_confidence,
                    p.beta,
                    p.concurrent_repolls
                )
                .is_ok(),
                "{total}: {p:?}"
            );
        }
    }
}
