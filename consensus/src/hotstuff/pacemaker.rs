//! HotStuff's pacemaker: the current view, its timer, timeouts and timeout certificates,
//! the backoff, and the suspicion of silent leaders.
//!
//! - A view ends with a QC for it or a TC (a quorum of signed timeouts). Entering a
//!   view cancels the previous view's timer and sets this one's.
//! - A view's timeout is the base timeout times `timeout_backoff` per consecutive
//!   timed-out view (capped), reset by a QC; with `backoff_per_leader` a view does not
//!   pay for the failure of the previous view of its leader's term (the step applies
//!   from the next view on). A view led by (or voting to) a suspected leader gets the short
//!   suspicion timeout and does not grow the backoff.
//! - Both follow the measured round trip ([`super::round_trip`]): the base is at least
//!   `timeout_round_trips` of it and the suspicion timeout `suspect_round_trips` of it
//!   (within the configured floors and cap), so a WAN does not turn a slow but live
//!   leader into a suspected one.
//! - A leader is suspected when one of its views ends in a TC with no proposal seen from
//!   it, or when the view before its own (whose votes it collects) ends in a TC that it
//!   sent no timeout for; its next valid proposal clears the suspicion (and gives the current view, if
//!   it had the short timeout for that reason, the normal one again).
//! - f+1 timeouts for the current view make a replica time out too (at least one honest
//!   replica gave up); 2f+1 form a TC.

use super::config::Config;
use super::messages::{Tc, Timeout};
use super::round_trip::RoundTrip;
use crate::core::{Action, Time, TimerId};
use primitives::{Committee, NodeId, View};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// What a received timeout led to.
#[derive(Debug)]
pub enum TimeoutOutcome {
    /// A quorum of timeouts for the view: this TC (`first` if this replica had not sent
    /// a TC for that view yet, so it should broadcast it).
    Certificate {
        /// The TC.
        tc: Tc,
        /// Whether it is the first TC this replica formed for that view.
        first: bool,
    },
    /// f+1 gave up on the current view, which this replica has not timed out in: join.
    Join,
    /// Counted, nothing more.
    Counted,
}

/// Views, timers and timeouts.
pub struct Pacemaker {
    /// This replica (never suspects itself).
    me: NodeId,
    committee: Arc<Committee>,
    config: Config,
    view: View,
    /// The highest TC seen.
    high_tc: Option<Tc>,
    consecutive_timeouts: u32,
    /// The view whose timeout last grew the backoff.
    backoff_counted: View,
    timed_out_view: View,
    timeouts: BTreeMap<View, BTreeMap<NodeId, Timeout>>,
    tc_sent: View,
    /// Leaders that let one of their views end in a TC without a proposal we saw.
    suspected: BTreeSet<NodeId>,
    /// The highest view in which we saw a valid proposal.
    proposal_seen: View,
    /// Durations of recent views that ended with their own QC.
    round_trip: RoundTrip,
}

impl Pacemaker {
    /// A pacemaker at view 0 (the core enters its first view on start).
    pub fn new(me: NodeId, committee: Arc<Committee>, config: Config) -> Self {
        Pacemaker {
            me,
            committee,
            config,
            view: View(0),
            high_tc: None,
            consecutive_timeouts: 0,
            backoff_counted: View(0),
            timed_out_view: View(0),
            timeouts: BTreeMap::new(),
            tc_sent: View(0),
            suspected: BTreeSet::new(),
            proposal_seen: View(0),
            round_trip: RoundTrip::default(),
        }
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view
    }

    /// The leader of `view`.
    pub fn leader_of(&self, view: View) -> NodeId {
        self.config.leader_of(&self.committee, view)
    }

    /// The highest TC seen.
    pub fn high_tc(&self) -> Option<&Tc> {
        self.high_tc.as_ref()
    }

    /// Enter `view` at `now` if it is above the current one: swap the view timers and
    /// forget timeouts of views before the previous one. Returns whether the view changed.
    pub fn enter(&mut self, view: View, now: Time, out: &mut Vec<Action<super::Message>>) -> bool {
        if view <= self.view {
            return false;
        }
        self.round_trip.entered(view, now);
        out.push(Action::CancelTimer {
            id: view_timer(self.view),
        });
        self.view = view;
        out.push(Action::SetTimer {
            id: view_timer(view),
            after: self.timeout_for(view),
        });
        let keep_from = View(view.0.saturating_sub(1));
        self.timeouts = self.timeouts.split_off(&keep_from);
        true
    }

    /// Whether `view` depends on a suspected leader (its own, or the next, who gets its votes).
    pub fn view_suspected(&self, view: View) -> bool {
        self.suspected.contains(&self.leader_of(view))
            || self.suspected.contains(&self.leader_of(view.next()))
    }

    fn timeout_for(&self, view: View) -> Duration {
        if self.view_suspected(view) {
            self.suspect_timeout()
        } else {
            self.normal_timeout()
        }
    }

    /// The base view timeout now (adapted to the measured round trip).
    pub fn base_timeout(&self) -> Duration {
        self.config.base_timeout(self.round_trip.estimate())
    }

    /// The timeout of a view with a live leader after the current run of timeouts. With
    /// `backoff_per_leader`, the step the previous view of the same leader's term cost
    /// is not applied to it.
    fn normal_timeout(&self) -> Duration {
        let mut steps = self.consecutive_timeouts;
        if self.config.backoff_per_leader
            && steps > 0
            && self.backoff_counted != View(0)
            && self.backoff_counted < self.view
            && self.backoff_counted.0 / self.config.views_per_leader.max(1)
                == self.view.0 / self.config.views_per_leader.max(1)
            && self.leader_of(self.backoff_counted) == self.leader_of(self.view)
        {
            steps -= 1;
        }
        self.config.view_timeout(self.base_timeout(), steps)
    }

    /// The timeout of a view that depends on a suspected leader.
    pub fn suspect_timeout(&self) -> Duration {
        self.config
            .suspect_timeout(self.round_trip.estimate(), self.base_timeout())
    }

    /// The measured round trip (median recent view), if any view was measured yet.
    pub fn round_trip(&self) -> Option<Duration> {
        self.round_trip.estimate()
    }

    /// The current view timed out here: count it for the backoff (unless a suspected
    /// leader explains it) and re-arm the timer to re-broadcast the timeout every base
    /// interval while the view does not end (peers that were cut off learn of it soon;
    /// the backoff governs only how long a view waits for its leader).
    pub fn local_timeout(&mut self, out: &mut Vec<Action<super::Message>>) {
        let view = self.view;
        if self.timed_out_view < view {
            self.timed_out_view = view;
            if !self.view_suspected(view) {
                self.consecutive_timeouts = self.consecutive_timeouts.saturating_add(1);
                self.backoff_counted = view;
            }
        }
        out.push(Action::SetTimer {
            id: view_timer(view),
            after: self.base_timeout(),
        });
    }

    /// Count a timeout for a view at or above the current one.
    pub fn add_timeout(&mut self, timeout: Timeout) -> TimeoutOutcome {
        let view = timeout.view;
        let entry = self.timeouts.entry(view).or_default();
        entry.insert(timeout.voter, timeout);
        let weight = self.committee.weight_of(entry.keys());
        if weight >= self.committee.quorum_threshold() {
            let tc = Tc {
                view,
                timeouts: entry
                    .values()
                    .map(|t| (t.voter, t.high_qc.view, t.signature))
                    .collect(),
            };
            let first = self.tc_sent < view;
            if first {
                self.tc_sent = view;
            }
            TimeoutOutcome::Certificate { tc, first }
        } else if weight >= self.committee.validity_threshold()
            && view == self.view
            && self.timed_out_view < view
        {
            TimeoutOutcome::Join
        } else {
            TimeoutOutcome::Counted
        }
    }

    /// A TC for a view at or above the current one: suspect its leader if it never
    /// proposed (taking back the backoff step its timeout cost: a silent leader says
    /// nothing about the network), keep it as the high TC, and return the view to enter.
    pub fn on_tc(&mut self, tc: Tc) -> Option<View> {
        if tc.view < self.view {
            return None;
        }
        if let Some(silent) = self.silent_member(&tc) {
            self.suspected.insert(silent);
            if self.backoff_counted == tc.view {
                self.consecutive_timeouts = self.consecutive_timeouts.saturating_sub(1);
                self.backoff_counted = View(0);
            }
        }
        let next = tc.view.next();
        if self.high_tc.as_ref().is_none_or(|h| h.view < tc.view) {
            self.high_tc = Some(tc);
        }
        Some(next)
    }

    /// The member a TC for `tc.view` shows silent, if any: its leader, if no proposal
    /// of the view was seen; else the next view's leader (who collects the view's
    /// votes), if it is another member and neither signed the TC nor sent this replica
    /// a timeout for the view. A live collector would have timed out with everyone
    /// else, so the missing timeout is what tells a crashed collector from a slow
    /// network; a wrong guess costs only the short timeout, and its next proposal
    /// clears it.
    fn silent_member(&self, tc: &Tc) -> Option<NodeId> {
        let leader = self.leader_of(tc.view);
        if self.proposal_seen < tc.view {
            return Some(leader);
        }
        if !self.config.suspect_silent_collector {
            return None;
        }
        let collector = self.leader_of(tc.view.next());
        let heard = tc
            .timeouts
            .iter()
            .any(|(signer, _, _)| *signer == collector)
            || self
                .timeouts
                .get(&tc.view)
                .is_some_and(|t| t.contains_key(&collector));
        (collector != leader && collector != self.me && !heard).then_some(collector)
    }

    /// A valid proposal of `view` by its leader `author`: clears any suspicion of it.
    /// If that suspicion had given the current view the short timeout, the view gets the
    /// normal one again, counted from now: the leader is not silent, and a vote that waits
    /// for the proposal's data (a replica that was cut off fetches the certificates it
    /// carries) must not be cut short by a suspicion the proposal just disproved.
    pub fn on_proposal(
        &mut self,
        author: NodeId,
        view: View,
        out: &mut Vec<Action<super::Message>>,
    ) {
        let was_suspected = self.view_suspected(self.view);
        self.suspected.remove(&author);
        if view > self.proposal_seen {
            self.proposal_seen = view;
        }
        if view == self.view
            && was_suspected
            && !self.view_suspected(self.view)
            && self.timed_out_view < self.view
        {
            out.push(Action::SetTimer {
                id: view_timer(self.view),
                after: self.normal_timeout(),
            });
        }
    }

    /// A QC for `view` (at or above the current view) arrived at `now`: the network
    /// works, reset the backoff; if it ends the current view, the view's duration is a
    /// round-trip sample.
    pub fn on_progress(&mut self, view: View, now: Time) {
        self.consecutive_timeouts = 0;
        let cap = Duration::from_millis(self.config.max_timeout_ms);
        self.round_trip.certified(view, now, cap);
    }

    /// Sizes: (views with timeouts held, suspected leaders).
    pub fn sizes(&self) -> (usize, usize) {
        (self.timeouts.len(), self.suspected.len())
    }

    /// The weight of the timeouts held for `view`.
    pub fn timeout_weight(&self, view: View) -> primitives::Weight {
        self.timeouts
            .get(&view)
            .map(|t| self.committee.weight_of(t.keys()))
            .unwrap_or_default()
    }
}

/// The timer of `view` (views are the timer ids below [`super::SYNC_TIMER`]).
pub fn view_timer(view: View) -> TimerId {
    TimerId::new(view.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timeout the pacemaker sets for `view` when it enters it.
    fn enter_timeout(pm: &mut Pacemaker, view: View) -> Duration {
        let mut out = Vec::new();
        assert!(pm.enter(view, Time(Duration::ZERO), &mut out));
        out.iter()
            .find_map(|a| match a {
                Action::SetTimer { id, after } if *id == view_timer(view) => Some(*after),
                _ => None,
            })
            .unwrap()
    }

    /// Views 2 and 3 are one leader's, 4 the next leader's (two views per leader); both
    /// of the first leader's views time out.
    fn timeouts(backoff_per_leader: bool) -> [Duration; 3] {
        let (committee, _) = Committee::generate(4, 1, &["h".into()], 1000, Some(1)).unwrap();
        let config = Config {
            backoff_per_leader,
            ..Config::default()
        };
        let mut pm = Pacemaker::new(NodeId(0), Arc::new(committee), config);
        assert_eq!(pm.leader_of(View(2)), pm.leader_of(View(3)));
        assert_ne!(pm.leader_of(View(3)), pm.leader_of(View(4)));
        let mut out = Vec::new();
        let first = enter_timeout(&mut pm, View(2));
        pm.local_timeout(&mut out);
        let second = enter_timeout(&mut pm, View(3));
        pm.local_timeout(&mut out);
        let next_leader = enter_timeout(&mut pm, View(4));
        [first, second, next_leader]
    }

    #[test]
    fn a_leaders_second_view_does_not_pay_for_its_first() {
        let s = Duration::from_secs;
        // Base 1 s, backoff x2, capped at 4 s.
        assert_eq!(timeouts(true), [s(1), s(1), s(4)]);
        assert_eq!(timeouts(false), [s(1), s(2), s(4)]);
    }
}
