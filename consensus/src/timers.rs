//! The driver's pending timers: set, replace and cancel by id in O(log n), the next
//! deadline in O(log n).

use crate::core::{Time, TimerId};
use std::collections::{BTreeSet, HashMap};

/// Pending timers, ordered by deadline (then id, so equal deadlines fire in a fixed
/// order and simulations replay).
#[derive(Debug, Default)]
pub struct Timers {
    by_deadline: BTreeSet<(Time, TimerId)>,
    deadline_of: HashMap<TimerId, Time>,
}

impl Timers {
    /// Set `id` to fire at `at`, replacing a pending timer with the same id.
    pub fn set(&mut self, id: TimerId, at: Time) {
        if let Some(old) = self.deadline_of.insert(id, at) {
            self.by_deadline.remove(&(old, id));
        }
        self.by_deadline.insert((at, id));
    }

    /// Cancel `id` if it is pending.
    pub fn cancel(&mut self, id: TimerId) {
        if let Some(old) = self.deadline_of.remove(&id) {
            self.by_deadline.remove(&(old, id));
        }
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Time> {
        self.by_deadline.first().map(|(t, _)| *t)
    }

    /// Remove and return the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<TimerId> {
        let (at, id) = *self.by_deadline.first()?;
        if at > now {
            return None;
        }
        self.by_deadline.pop_first();
        self.deadline_of.remove(&id);
        Some(id)
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.deadline_of.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.deadline_of.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(ms: u64) -> Time {
        Time(Duration::from_millis(ms))
    }

    #[test]
    fn replace_cancel_and_fire_in_deadline_order() {
        let mut timers = Timers::default();
        timers.set(TimerId::new(1), t(30));
        timers.set(TimerId::new(2), t(10));
        timers.set(TimerId::new(3), t(20));
        timers.set(TimerId::new(1), t(5)); // replaced, not duplicated
        timers.cancel(TimerId::new(3));
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.next_deadline(), Some(t(5)));
        assert_eq!(timers.pop_due(t(4)), None);
        assert_eq!(timers.pop_due(t(100)), Some(TimerId::new(1)));
        assert_eq!(timers.pop_due(t(100)), Some(TimerId::new(2)));
        assert_eq!(timers.pop_due(t(100)), None);
        assert!(timers.is_empty());
    }

    #[test]
    fn core_and_adversary_timers_do_not_collide() {
        let mut timers = Timers::default();
        timers.set(TimerId::new(7), t(1));
        timers.set(TimerId::adversary(7), t(2));
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.pop_due(t(9)), Some(TimerId::new(7)));
        let second = timers.pop_due(t(9));
        assert!(second.is_some_and(|id| id.is_adversary()));
    }
}
