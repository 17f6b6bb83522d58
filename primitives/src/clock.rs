//! A node's own clock: how the time a node reads and its timers run against the time
//! it lives in (tokio's: the machine's, or the simulation's under turmoil).
//!
//! A real node runs on [`NodeClock::real`]. A simulation gives a node a schedule of
//! [`ClockChange`]s (at simulated instants: a new rate, a jump forward) and the
//! simulation's elapsed time as the source, so a node can run 2x fast, 0.5x slow, or
//! jump ten seconds ahead mid-run, while the network and every other node keep the
//! simulation's time. Timeouts are local; safety must never depend on them.

use std::sync::Arc;
use std::time::Duration;

/// One change of a node's clock, at a real (simulated) instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockChange {
    /// When, as real elapsed time since the source's origin.
    pub at: Duration,
    /// The node's clock runs at this many times real speed from then on (> 0).
    pub rate: f64,
    /// And first jumps forward this much.
    pub jump: Duration,
}

type Source = Arc<dyn Fn() -> Duration + Send + Sync>;

/// A node's clock. Cheap to clone; clones read the same clock.
#[derive(Clone)]
pub struct NodeClock {
    changes: Arc<[ClockChange]>,
    source: Option<Source>,
    origin: tokio::time::Instant,
}

impl std::fmt::Debug for NodeClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClock")
            .field("changes", &self.changes)
            .finish()
    }
}

impl Default for NodeClock {
    fn default() -> Self {
        Self::real()
    }
}

impl NodeClock {
    /// tokio's time, unchanged (the only clock outside simulations).
    pub fn real() -> Self {
        NodeClock {
            changes: Arc::from(Vec::new()),
            source: None,
            origin: tokio::time::Instant::now(),
        }
    }

    /// A clock that reads real time from `source` (elapsed since some fixed origin, the
    /// same for every node: the simulation's start) and changes as `changes` say
    /// (sorted here by time; rates must be positive and finite).
    pub fn scheduled(
        source: impl Fn() -> Duration + Send + Sync + 'static,
        mut changes: Vec<ClockChange>,
    ) -> Result<Self, String> {
        if changes.iter().any(|c| !c.rate.is_finite() || c.rate <= 0.0) {
            return Err("a clock rate must be a positive number".into());
        }
        changes.sort_by_key(|c| c.at);
        Ok(NodeClock {
            changes: changes.into(),
            source: Some(Arc::new(source)),
            origin: tokio::time::Instant::now(),
        })
    }

    /// Whether this clock is real time, unchanged.
    pub fn is_real(&self) -> bool {
        self.changes.is_empty()
    }

    fn real_now(&self) -> Duration {
        match &self.source {
            Some(source) => source(),
            None => self.origin.elapsed(),
        }
    }

    /// The node's time when real time is `real`.
    fn node_at(&self, real: Duration) -> Duration {
        let (mut node, mut at, mut rate) = (Duration::ZERO, Duration::ZERO, 1.0);
        for c in self.changes.iter().take_while(|c| c.at <= real) {
            node += (c.at - at).mul_f64(rate) + c.jump;
            (at, rate) = (c.at, c.rate);
        }
        node + (real - at).mul_f64(rate)
    }

    /// The node's time now (since the origin, on its own clock).
    pub fn now(&self) -> Duration {
        if self.is_real() {
            return self.real_now();
        }
        self.node_at(self.real_now())
    }

    /// How long, in real time, until the node's clock reads `deadline` (zero if it
    /// already does), across every rate change and jump on the way.
    pub fn real_until(&self, deadline: Duration) -> Duration {
        let now = self.real_now();
        if self.is_real() {
            return deadline.saturating_sub(now);
        }
        let mut real = now;
        let mut node = self.node_at(now);
        let mut rate = self.rate_at(now);
        for c in self.changes.iter().filter(|c| c.at > now) {
            if node >= deadline {
                return real - now;
            }
            let needed = wait(deadline - node, rate);
            if real + needed <= c.at {
                return real + needed - now;
            }
            node += (c.at - real).mul_f64(rate) + c.jump;
            (real, rate) = (c.at, c.rate);
        }
        if node >= deadline {
            return real - now;
        }
        real + wait(deadline - node, rate) - now
    }

    /// A duration of the node's clock (a delay it sets), in real time at its present
    /// rate.
    pub fn real_duration(&self, d: Duration) -> Duration {
        if self.is_real() {
            return d;
        }
        d.div_f64(self.rate_at(self.real_now()))
    }

    /// The clock's rate at real time `real`.
    fn rate_at(&self, real: Duration) -> f64 {
        self.changes
            .iter()
            .take_while(|c| c.at <= real)
            .last()
            .map_or(1.0, |c| c.rate)
    }
}

/// The real time for `gap` (> 0) of node time at `rate`: never zero, so a node clock
/// just short of a deadline makes its driver sleep, not spin (division rounds to the
/// nanosecond).
fn wait(gap: Duration, rate: f64) -> Duration {
    gap.div_f64(rate).max(Duration::from_nanos(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn clock(changes: Vec<ClockChange>) -> (NodeClock, Arc<AtomicU64>) {
        let real = Arc::new(AtomicU64::new(0));
        let source = real.clone();
        let clock = NodeClock::scheduled(
            move || Duration::from_millis(source.load(Ordering::Relaxed)),
            changes,
        )
        .unwrap();
        (clock, real)
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn rates_and_jumps_shape_the_nodes_time_and_its_waits() {
        let (c, real) = clock(vec![
            ClockChange {
                at: S(10),
                rate: 2.0,
                jump: Duration::ZERO,
            },
            ClockChange {
                at: S(20),
                rate: 0.5,
                jump: S(10),
            },
        ]);
        let at = |ms: u64| {
            real.store(ms, Ordering::Relaxed);
            c.now()
        };
        assert_eq!(at(5_000), S(5));
        assert_eq!(at(15_000), S(20)); // 10 + 5 s at 2x
        assert_eq!(at(20_000), S(40)); // 10 + 20 + the 10 s jump
        assert_eq!(at(24_000), S(42)); // then half speed
                                       // Waits from real 5 s: node 8 s is 3 s away; node 25 s is past the rate change
                                       // (node 30 s at real 20 s before the jump): 10 + 7.5 s; node 35 s falls inside
                                       // the jump: at real 20 s; node 44 s: 20 + 8 s at half speed.
        real.store(5_000, Ordering::Relaxed);
        assert_eq!(c.real_until(S(8)), S(3));
        assert_eq!(c.real_until(S(25)), Duration::from_millis(12_500));
        assert_eq!(c.real_until(S(35)), S(15));
        assert_eq!(c.real_until(S(44)), S(23));
        assert_eq!(c.real_until(S(1)), Duration::ZERO);
        // One nanosecond short of a deadline at a fast rate: a wait, not zero.
        let (fast, fast_real) = clock(vec![ClockChange {
            at: Duration::ZERO,
            rate: 3.0,
            jump: Duration::ZERO,
        }]);
        fast_real.store(1_000, Ordering::Relaxed);
        let deadline = fast.now() + Duration::from_nanos(1);
        assert!(fast.real_until(deadline) > Duration::ZERO);
        real.store(22_000, Ordering::Relaxed);
        assert_eq!(c.real_duration(S(1)), S(2));
    }

    #[test]
    fn a_real_clock_is_unchanged_and_bad_rates_are_refused() {
        let (c, real) = clock(vec![]);
        real.store(1_500, Ordering::Relaxed);
        assert_eq!(c.now(), Duration::from_millis(1_500));
        assert_eq!(c.real_until(S(2)), Duration::from_millis(500));
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let change = ClockChange {
                at: S(1),
                rate,
                jump: Duration::ZERO,
            };
            assert!(NodeClock::scheduled(|| Duration::ZERO, vec![change]).is_err());
        }
    }
}
