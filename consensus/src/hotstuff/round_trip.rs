//! The round trip the pacemaker measures: how long this replica's recent views lasted
//! when they ended with a QC for themselves.
//!
//! A replica enters view `v` when it sees the QC of `v - 1` (carried by the proposal of
//! `v`, or formed by itself as the leader of `v`) and leaves it when it sees the QC of
//! `v`. In between, its vote travels to the next leader, a quorum of votes gathers there,
//! and the next proposal travels back: one round trip to the quorum's slowest member,
//! plus processing. That duration is what a timeout must outlast for a live leader, so
//! the pacemaker scales its timeouts by it instead of assuming a LAN.
//!
//! The estimate is the **median** of the last [`SAMPLES`] such views. A median is not
//! moved by the views of f Byzantine leaders who delay their proposals on purpose (they
//! lead fewer than a third of the views), nor by one slow view after a partition; a
//! sample is capped at the largest view timeout, so nothing a peer does can stretch the
//! timeouts beyond the configured cap. Views that end in a timeout certificate, or that
//! the replica skipped by a QC or TC of a later view, give no sample: they measure the
//! leader's silence or the replica's own lag, not the network.

use crate::core::Time;
use primitives::View;
use std::collections::VecDeque;
use std::time::Duration;

/// How many recent views the estimate is the median of.
pub const SAMPLES: usize = 31;

/// Durations of recent views that ended with their own QC.
#[derive(Debug, Default)]
pub struct RoundTrip {
    /// The view being timed and when it was entered.
    entered: Option<(View, Time)>,
    samples: VecDeque<Duration>,
}

impl RoundTrip {
    /// The replica entered `view` at `now`.
    pub fn entered(&mut self, view: View, now: Time) {
        self.entered = Some((view, now));
    }

    /// A QC for `view` arrived at `now`: if it ends the view being timed, record how long
    /// that view lasted (at most `cap`).
    pub fn certified(&mut self, view: View, now: Time, cap: Duration) {
        let Some((timed, at)) = self.entered else {
            return;
        };
        if timed != view {
            return;
        }
        self.entered = None;
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(now.since(at).min(cap));
    }

    /// The median of the recent samples (`None` before the first).
    pub fn estimate(&self) -> Option<Duration> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        Some(sorted[sorted.len() / 2])
    }

    /// How many samples the estimate rests on.
    #[cfg(test)]
    pub fn samples(&self) -> usize {
        self.samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Time {
        Time(Duration::from_millis(ms))
    }

    const CAP: Duration = Duration::from_secs(4);

    #[test]
    fn a_view_ended_by_its_own_qc_is_a_sample() {
        let mut rt = RoundTrip::default();
        assert_eq!(rt.estimate(), None);
        rt.entered(View(3), at(1_000));
        rt.certified(View(3), at(1_180), CAP);
        assert_eq!(rt.estimate(), Some(Duration::from_millis(180)));
        // A second QC for the same view measures nothing more.
        rt.certified(View(3), at(1_500), CAP);
        assert_eq!(rt.samples(), 1);
    }

    #[test]
    fn skipped_views_give_no_sample() {
        let mut rt = RoundTrip::default();
        rt.entered(View(3), at(1_000));
        // A QC of a later view: the replica lagged; the TC path never calls certified.
        rt.certified(View(5), at(1_900), CAP);
        assert_eq!(rt.estimate(), None);
    }

    #[test]
    fn the_median_ignores_a_minority_of_slow_views() {
        let mut rt = RoundTrip::default();
        for v in 0..SAMPLES as u64 {
            let start = v * 10_000;
            rt.entered(View(v), at(start));
            // Every third view is a Byzantine leader's, dragged out to the cap.
            let d = if v % 3 == 0 { 60_000 } else { 150 + v };
            rt.certified(View(v), at(start + d), CAP);
        }
        let e = rt.estimate().unwrap();
        assert!(e < Duration::from_millis(200), "{e:?}");
    }

    #[test]
    fn old_samples_age_out_and_samples_are_capped() {
        let mut rt = RoundTrip::default();
        for v in 0..(3 * SAMPLES) as u64 {
            let start = v * 100_000;
            rt.entered(View(v), at(start));
            let d = if v < SAMPLES as u64 { 20 } else { 90_000 };
            rt.certified(View(v), at(start + d), CAP);
        }
        assert_eq!(rt.samples(), SAMPLES);
        assert_eq!(rt.estimate(), Some(CAP));
    }
}
