//! A per-member request rate: what a node serves one member each second, so that a
//! member asking without pause cannot make the node read and send without bound.
//!
//! Generic over the clock ([`Moment`]): sans-IO cores pass their own `now`, tasks pass
//! a (possibly simulated) `Instant`.

use crate::NodeId;
use std::collections::BTreeMap;
use std::time::Duration;

/// A point in time that can say how long after another it is.
pub trait Moment: Copy {
    /// Time from `earlier` to `self`; zero when `earlier` is later.
    fn since(self, earlier: Self) -> Duration;
}

impl Moment for std::time::Instant {
    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// At most `per_second` requests admitted per member in each one-second window (a
/// window starts at a member's first request after the previous one ended); the rest
/// are refused and counted. State: one entry per member that asked.
#[derive(Clone, Debug)]
pub struct PerMemberRate<T> {
    per_second: u32,
    windows: BTreeMap<NodeId, (T, u32)>,
    refused: u64,
}

impl<T: Moment> PerMemberRate<T> {
    /// A limit of `per_second` requests per member.
    pub fn new(per_second: u32) -> Self {
        PerMemberRate {
            per_second,
            windows: BTreeMap::new(),
            refused: 0,
        }
    }

    /// Whether a request from `member` at `now` may be served; counts it either way.
    pub fn admit(&mut self, member: NodeId, now: T) -> bool {
        let w = self.windows.entry(member).or_insert((now, 0));
        if now.since(w.0) >= Duration::from_secs(1) {
            *w = (now, 0);
        }
        w.1 = w.1.saturating_add(1);
        if w.1 > self.per_second {
            self.refused += 1;
            return false;
        }
        true
    }

    /// Requests refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    struct Ms(u64);
    impl Moment for Ms {
        fn since(self, earlier: Self) -> Duration {
            Duration::from_millis(self.0.saturating_sub(earlier.0))
        }
    }

    #[test]
    fn a_flooding_member_is_refused_past_its_rate_and_others_are_not() {
        let mut rate = PerMemberRate::new(5);
        let admitted = (0..100).filter(|_| rate.admit(NodeId(1), Ms(0))).count();
        assert_eq!(admitted, 5);
        assert_eq!(rate.refused(), 95);
        assert!(rate.admit(NodeId(2), Ms(10)));
        assert!(!rate.admit(NodeId(1), Ms(999)));
        assert!(rate.admit(NodeId(1), Ms(1_000)));
    }
}
