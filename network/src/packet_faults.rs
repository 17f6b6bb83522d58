//! Packet faults of the simulated network, below QUIC: each UDP datagram a simulated
//! socket sends may be lost, duplicated or delayed (and so overtaken by later ones),
//! independently, at configured rates; and each socket's traffic toward each peer may
//! be held to a bandwidth, queued up to a bound and dropped beyond it, as a router
//! would. turmoil models links that fail and latencies; these are the faults of a
//! real path that QUIC's loss recovery, duplicate detection and congestion control
//! exist for, and the transport must absorb them.
//!
//! They apply to the [`crate::turmoil_socket::TurmoilUdpSocket`]s bound on the thread
//! that installed them ([`install`]): a simulation runs all its hosts on one thread,
//! so tests running side by side never see each other's. Every random choice comes
//! from one seeded generator per socket (the k-th socket bound gets seed + k), so a
//! simulation stays deterministic.

use rand::{Rng, SeedableRng};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// Rates and limits of the packet faults (all off by default).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketFaults {
    /// Probability that a datagram is lost.
    #[serde(default)]
    pub loss: f64,
    /// Probability that a datagram is sent twice.
    #[serde(default)]
    pub duplicate: f64,
    /// Probability that a datagram is held back by 1 to `reorder_ms` ms (uniformly),
    /// so the datagrams sent after it may arrive first.
    #[serde(default)]
    pub reorder: f64,
    /// The longest hold of a reordered datagram, in milliseconds.
    #[serde(default = "default_reorder_ms")]
    pub reorder_ms: u64,
    /// Bandwidth from each socket to each peer, in megabits per second (0: no cap).
    #[serde(default)]
    pub bandwidth_mbps: f64,
    /// The most a capped link queues, in milliseconds of its bandwidth: a datagram
    /// that would wait longer is dropped (tail drop).
    #[serde(default = "default_queue_ms")]
    pub queue_ms: u64,
}

impl Default for PacketFaults {
    fn default() -> Self {
        PacketFaults {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_ms: default_reorder_ms(),
            bandwidth_mbps: 0.0,
            queue_ms: default_queue_ms(),
        }
    }
}

fn default_reorder_ms() -> u64 {
    20
}

fn default_queue_ms() -> u64 {
    100
}

impl PacketFaults {
    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        self.loss > 0.0 || self.duplicate > 0.0 || self.reorder > 0.0 || self.bandwidth_mbps > 0.0
    }

    /// Check the values: probabilities in [0, 1), a positive hold and queue, a finite
    /// non-negative bandwidth.
    pub fn validate(&self) -> Result<(), String> {
        let rate = |r: f64| (0.0..1.0).contains(&r);
        if !rate(self.loss) || !rate(self.duplicate) || !rate(self.reorder) {
            return Err("packet fault rates must be in [0, 1)".into());
        }
        if self.reorder_ms == 0 || self.reorder_ms > 60_000 {
            return Err("reorder_ms must be in 1..=60000".into());
        }
        if !self.bandwidth_mbps.is_finite() || self.bandwidth_mbps < 0.0 {
            return Err("bandwidth_mbps must be a non-negative number".into());
        }
        if self.bandwidth_mbps > 0.0 && self.bandwidth_mbps < 0.01 {
            return Err("bandwidth_mbps must be 0 (no cap) or at least 0.01".into());
        }
        if self.queue_ms == 0 || self.queue_ms > 60_000 {
            return Err("queue_ms must be in 1..=60000".into());
        }
        Ok(())
    }
}

/// What the packet faults did, over every socket of the thread since [`install`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PacketFaultCounts {
    /// Datagrams sent (before any fault).
    pub datagrams: u64,
    /// Lost.
    pub lost: u64,
    /// Sent twice.
    pub duplicated: u64,
    /// Held back.
    pub reordered: u64,
    /// Delayed by a bandwidth cap.
    pub queued: u64,
    /// Dropped by a full queue.
    pub queue_drops: u64,
}

thread_local! {
    static INSTALLED: RefCell<Option<(PacketFaults, u64)>> = const { RefCell::new(None) };
    static SOCKETS: Cell<u64> = const { Cell::new(0) };
    static COUNTS: Cell<PacketFaultCounts> = Cell::new(PacketFaultCounts::default());
}

/// Apply `faults` to the simulated sockets bound on this thread from now on (`None`:
/// none), with `seed` for their random choices; resets the counts.
pub fn install(faults: Option<PacketFaults>, seed: u64) {
    INSTALLED.with(|f| *f.borrow_mut() = faults.filter(|f| f.any()).map(|f| (f, seed)));
    SOCKETS.with(|s| s.set(0));
    COUNTS.with(|c| c.set(PacketFaultCounts::default()));
}

/// The counts since [`install`] on this thread.
pub fn counts() -> PacketFaultCounts {
    COUNTS.with(|c| c.get())
}

fn count(f: impl FnOnce(&mut PacketFaultCounts)) {
    COUNTS.with(|c| {
        let mut counts = c.get();
        f(&mut counts);
        c.set(counts);
    });
}

/// What to do with one datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Nothing: send it now, once.
    Send,
    /// Drop it.
    Drop,
    /// Send it `copies` times, after `delay`.
    Later { delay: Duration, copies: u8 },
}

/// One socket's packet faults: its generator and its links' queues.
pub(crate) struct SocketFaults {
    faults: PacketFaults,
    rng: rand_chacha::ChaCha8Rng,
    /// Per destination: when its link is free again (bandwidth cap).
    free_at: HashMap<SocketAddr, Instant>,
}

impl SocketFaults {
    /// The faults installed on this thread, for a socket being bound now.
    pub(crate) fn for_new_socket() -> Option<SocketFaults> {
        let (faults, seed) = INSTALLED.with(|f| f.borrow().clone())?;
        let k = SOCKETS.with(|s| {
            let k = s.get();
            s.set(k + 1);
            k
        });
        Some(SocketFaults {
            faults,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_add(k)),
            free_at: HashMap::new(),
        })
    }

    /// Decide the fate of a datagram of `len` bytes to `to`, sent at `now`.
    pub(crate) fn fate(&mut self, to: SocketAddr, len: usize, now: Instant) -> Fate {
        let f = &self.faults;
        count(|c| c.datagrams += 1);
        if f.loss > 0.0 && self.rng.gen_bool(f.loss) {
            count(|c| c.lost += 1);
            return Fate::Drop;
        }
        let mut delay = Duration::ZERO;
        if f.bandwidth_mbps > 0.0 {
            let free = self.free_at.get(&to).copied().unwrap_or(now).max(now);
            let wait = free - now;
            if wait > Duration::from_millis(f.queue_ms) {
                count(|c| c.queue_drops += 1);
                return Fate::Drop;
            }
            let transmit = Duration::from_secs_f64(len as f64 * 8.0 / (f.bandwidth_mbps * 1e6));
            self.free_at.insert(to, free + transmit);
            if !wait.is_zero() {
                count(|c| c.queued += 1);
            }
            delay = wait + transmit;
        }
        let mut copies = 1;
        if f.duplicate > 0.0 && self.rng.gen_bool(f.duplicate) {
            count(|c| c.duplicated += 1);
            copies = 2;
        }
        if f.reorder > 0.0 && self.rng.gen_bool(f.reorder) {
            count(|c| c.reordered += 1);
            delay += Duration::from_millis(self.rng.gen_range(1..=f.reorder_ms));
        }
        if delay.is_zero() && copies == 1 {
            Fate::Send
        } else {
            Fate::Later { delay, copies }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[tokio::test]
    async fn rates_are_honoured_and_choices_repeat_with_the_seed() {
        let faults = PacketFaults {
            loss: 0.1,
            duplicate: 0.05,
            reorder: 0.2,
            ..PacketFaults::default()
        };
        let run = || {
            install(Some(faults.clone()), 7);
            let mut s = SocketFaults::for_new_socket().unwrap();
            let now = Instant::now();
            let fates: Vec<Fate> = (0..10_000).map(|_| s.fate(addr(1), 1_200, now)).collect();
            (fates, counts())
        };
        let (first, counts) = run();
        assert_eq!(run().0, first);
        assert_eq!(counts.datagrams, 10_000);
        let near = |n: u64, p: f64, of: u64| (n as f64 - p * of as f64).abs() < 0.2 * p * of as f64;
        assert!(near(counts.lost, 0.1, 10_000), "{counts:?}");
        assert!(
            near(counts.duplicated, 0.05, 10_000 - counts.lost),
            "{counts:?}"
        );
        assert!(
            near(counts.reordered, 0.2, 10_000 - counts.lost),
            "{counts:?}"
        );
        assert!(first.iter().all(|f| match f {
            Fate::Later { delay, .. } => *delay <= Duration::from_millis(20),
            _ => true,
        }));
        install(None, 0);
        assert!(SocketFaults::for_new_socket().is_none());
    }

    #[tokio::test]
    async fn a_capped_link_queues_then_drops_at_its_bound() {
        // 8 Mbit/s: 1,000 bytes take 1 ms; the queue holds 10 ms.
        let faults = PacketFaults {
            bandwidth_mbps: 8.0,
            queue_ms: 10,
            ..PacketFaults::default()
        };
        install(Some(faults), 1);
        let mut s = SocketFaults::for_new_socket().unwrap();
        let now = Instant::now();
        let fates: Vec<Fate> = (0..15).map(|_| s.fate(addr(1), 1_000, now)).collect();
        assert_eq!(
            fates[0],
            Fate::Later {
                delay: Duration::from_millis(1),
                copies: 1
            }
        );
        assert_eq!(
            fates[10],
            Fate::Later {
                delay: Duration::from_millis(11),
                copies: 1
            }
        );
        assert!(fates[11..].iter().all(|f| *f == Fate::Drop));
        // Another destination has its own link.
        assert_ne!(s.fate(addr(2), 1_000, now), Fate::Drop);
        assert_eq!(counts().queue_drops, 4);
        install(None, 0);
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            PacketFaults {
                loss: 1.0,
                ..Default::default()
            },
            PacketFaults {
                duplicate: -0.1,
                ..Default::default()
            },
            PacketFaults {
                reorder: f64::NAN,
                ..Default::default()
            },
            PacketFaults {
                reorder_ms: 0,
                ..Default::default()
            },
            PacketFaults {
                bandwidth_mbps: f64::INFINITY,
                ..Default::default()
            },
            PacketFaults {
                bandwidth_mbps: 0.001,
                ..Default::default()
            },
            PacketFaults {
                queue_ms: 0,
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(PacketFaults::default().validate().is_ok());
    }
}
