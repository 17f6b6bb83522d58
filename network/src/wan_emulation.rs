//! WAN emulation in the application, for real UDP sockets where the kernel has no netem.
//!
//! A node that runs with an emulation ([`install`], once per process, before its
//! network starts) sends every datagram to another committee member through a delay
//! line: it leaves the socket the one-way latency of the two members' regions later
//! (from a [`LatencyMatrix`], the file format the simulation reads), plus up to
//! `jitter` more (uniform, so datagrams of one link may overtake each other by up to
//! that much), or never, with probability `loss`. Datagrams to any other address (a
//! client's) leave at once: clients sit next to their node. Only the sending side
//! delays, so a member-to-member datagram is delayed once; a round trip takes the
//! matrix's round trip.
//!
//! What this is not: the kernel's queues are not shaped (no bandwidth limit, no
//! queueing delay beyond the latency), and the delay runs on the sender's tokio timers
//! (millisecond resolution, later under CPU overload). Records say "emulated in the
//! application". The delay line holds at most [`MAX_QUEUED_BYTES`]; a datagram beyond
//! that is dropped and counted, as a router's full queue would.

use crate::latency_matrix::LatencyMatrix;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::ReadBuf;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Most bytes one socket's delay line holds; beyond, datagrams are dropped and counted.
pub const MAX_QUEUED_BYTES: u64 = 64 << 20;
/// Longest jitter accepted, in milliseconds.
pub const MAX_JITTER_MS: u64 = 10_000;

/// Why an emulation could not be set up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmulationError {
    /// A region name the matrix does not have.
    #[error("unknown region `{0}` (not in the latency matrix)")]
    UnknownRegion(String),
    /// Loss or jitter out of range.
    #[error("{0}")]
    Invalid(String),
    /// [`install`] was called twice.
    #[error("a WAN emulation is already installed in this process")]
    AlreadyInstalled,
}

/// What an emulation did, for the node's counters.
#[derive(Debug, Default)]
pub struct EmulationCounters {
    /// Datagrams sent through the delay line.
    pub delayed: AtomicU64,
    /// Datagrams dropped by the emulated loss.
    pub lost: AtomicU64,
    /// Datagrams dropped because the delay line was full.
    pub queue_full: AtomicU64,
}

/// The latencies one node's datagrams see.
pub struct WanEmulation {
    /// One-way delay to each member address.
    delay: HashMap<SocketAddr, Duration>,
    jitter: Duration,
    loss: f64,
    rng: Mutex<rand_chacha::ChaCha8Rng>,
    /// What it did.
    pub counters: EmulationCounters,
}

impl fmt::Debug for WanEmulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WanEmulation")
            .field("links", &self.delay.len())
            .field("jitter", &self.jitter)
            .field("loss", &self.loss)
            .finish()
    }
}

impl WanEmulation {
    /// The emulation for a node in region `own` whose peers are `members` (each
    /// address a member listens on, with its region): datagrams to such an address
    /// take the matrix's one-way latency between `own` and its region.
    pub fn new(
        matrix: &LatencyMatrix,
        own: &str,
        members: &[(SocketAddr, String)],
        jitter_ms: u64,
        loss: f64,
    ) -> Result<Self, EmulationError> {
        let region = |name: &str| {
            matrix
                .region(name)
                .ok_or_else(|| EmulationError::UnknownRegion(name.into()))
        };
        let own = region(own)?;
        if jitter_ms > MAX_JITTER_MS {
            return Err(EmulationError::Invalid(format!(
                "jitter must be at most {MAX_JITTER_MS} ms"
            )));
        }
        if !(0.0..1.0).contains(&loss) {
            return Err(EmulationError::Invalid(
                "loss must be a probability in [0, 1)".into(),
            ));
        }
        let mut delay = HashMap::new();
        for (address, name) in members {
            let ms = matrix.one_way_ms(own, region(name)?);
            delay.insert(
                *address,
                Duration::from_micros((ms * 1000.0).round() as u64),
            );
        }
        Ok(WanEmulation {
            delay,
            jitter: Duration::from_millis(jitter_ms),
            loss,
            rng: Mutex::new(rand_chacha::ChaCha8Rng::from_entropy()),
            counters: EmulationCounters::default(),
        })
    }

    /// When a datagram to `to` leaves: `None` to send it now (not a member's
    /// address), `Some(None)` to drop it (emulated loss), `Some(Some(delay))` to send
    /// it after `delay`.
    fn fate(&self, to: SocketAddr) -> Option<Option<Duration>> {
        let base = *self.delay.get(&to)?;
        if self.loss == 0.0 && self.jitter.is_zero() {
            return Some(Some(base));
        }
        let Ok(mut rng) = self.rng.lock() else {
            return Some(Some(base));
        };
        if self.loss > 0.0 && rng.gen_bool(self.loss) {
            return Some(None);
        }
        let extra = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_micros(rng.gen_range(0..=self.jitter.as_micros() as u64))
        };
        Some(Some(base + extra))
    }

    /// The one-way delay (without jitter) to `to`, if it is a member's address.
    pub fn delay_to(&self, to: SocketAddr) -> Option<Duration> {
        self.delay.get(&to).copied()
    }
}

static INSTALLED: OnceLock<Arc<WanEmulation>> = OnceLock::new();

/// Make every real-UDP endpoint this process creates from now on
/// ([`crate::Environment::Udp`]) send through `emulation`. Once per process.
pub fn install(emulation: WanEmulation) -> Result<Arc<WanEmulation>, EmulationError> {
    let emulation = Arc::new(emulation);
    INSTALLED
        .set(emulation.clone())
        .map_err(|_| EmulationError::AlreadyInstalled)?;
    Ok(emulation)
}

/// The emulation installed in this process, if any.
pub fn installed() -> Option<Arc<WanEmulation>> {
    INSTALLED.get().cloned()
}

/// A datagram waiting in the delay line.
struct Held {
    due: Instant,
    seq: u64,
    to: SocketAddr,
    contents: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// A real UDP socket whose datagrams to committee members go through a delay line.
/// One datagram per transmit and per receive (no GSO/GRO), no ECN.
pub struct EmulatedUdpSocket {
    socket: Arc<tokio::net::UdpSocket>,
    emulation: Arc<WanEmulation>,
    line: mpsc::UnboundedSender<Held>,
    queued: Arc<AtomicU64>,
    seq: AtomicU64,
}

impl fmt::Debug for EmulatedUdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatedUdpSocket")
            .field("local_addr", &self.socket.local_addr().ok())
            .field("emulation", &self.emulation)
            .finish()
    }
}

impl EmulatedUdpSocket {
    /// Wrap a bound socket (made non-blocking here). Must be called inside a tokio
    /// runtime: the delay line is a task of it, which ends with the socket.
    pub fn new(socket: std::net::UdpSocket, emulation: Arc<WanEmulation>) -> io::Result<Arc<Self>> {
        socket.set_nonblocking(true)?;
        let socket = Arc::new(tokio::net::UdpSocket::from_std(socket)?);
        let (line, waiting) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicU64::new(0));
        tokio::spawn(delay_line(socket.clone(), waiting, queued.clone()));
        Ok(Arc::new(EmulatedUdpSocket {
            socket,
            emulation,
            line,
            queued,
            seq: AtomicU64::new(0),
        }))
    }
}

/// Send each held datagram when it is due, in due order (ties in send order). The
/// bytes queued are bounded by the sender ([`MAX_QUEUED_BYTES`]).
async fn delay_line(
    socket: Arc<tokio::net::UdpSocket>,
    mut waiting: mpsc::UnboundedReceiver<Held>,
    queued: Arc<AtomicU64>,
) {
    let mut heap: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    let mut open = true;
    loop {
        let next_due = heap.peek().map(|Reverse(h)| h.due);
        tokio::select! {
            held = waiting.recv(), if open => match held {
                Some(h) => heap.push(Reverse(h)),
                None => open = false,
            },
            _ = async {
                match next_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                while let Some(Reverse(h)) = heap.peek() {
                    if h.due > Instant::now() {
                        break;
                    }
                    let Some(Reverse(h)) = heap.pop() else { break };
                    queued.fetch_sub(h.contents.len() as u64, Ordering::Relaxed);
                    // A send error (no route, buffer full) is a datagram lost on the
                    // wire; QUIC's loss recovery takes it from there.
                    let _ = socket.send_to(&h.contents, h.to).await;
                }
            }
        }
        if !open && heap.is_empty() {
            return;
        }
    }
}

#[derive(Debug)]
struct Writable(Arc<tokio::net::UdpSocket>);

impl UdpPoller for Writable {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        self.0.poll_send_ready(cx)
    }
}

impl AsyncUdpSocket for EmulatedUdpSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable(self.socket.clone()))
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        let counters = &self.emulation.counters;
        match self.emulation.fate(transmit.destination) {
            None => self
                .socket
                .try_send_to(transmit.contents, transmit.destination)
                .map(|_| ()),
            Some(None) => {
                counters.lost.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Some(Some(delay)) => {
                let len = transmit.contents.len() as u64;
                if self.queued.fetch_add(len, Ordering::Relaxed) + len > MAX_QUEUED_BYTES {
                    self.queued.fetch_sub(len, Ordering::Relaxed);
                    counters.queue_full.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                let held = Held {
                    due: Instant::now() + delay,
                    seq: self.seq.fetch_add(1, Ordering::Relaxed),
                    to: transmit.destination,
                    contents: transmit.contents.to_vec(),
                };
                if self.line.send(held).is_err() {
                    // The runtime is shutting down: the datagram is lost.
                    self.queued.fetch_sub(len, Ordering::Relaxed);
                    return Ok(());
                }
                counters.delayed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(slot)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let mut read = ReadBuf::new(buf);
        match self.socket.poll_recv_from(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(addr)) => {
                let len = read.filled().len();
                *slot = RecvMeta {
                    addr,
                    len,
                    stride: len,
                    ecn: None,
                    dst_ip: None,
                };
                Poll::Ready(Ok(1))
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        1
    }

    fn max_receive_segments(&self) -> usize {
        1
    }

    fn may_fragment(&self) -> bool {
        // A plain socket: the kernel may fragment (no DF bit is set), so quinn keeps to
        // its initial MTU rather than discover one that only fragmentation carries.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MATRIX: &str = "region,a,b\na,2,200\nb,200,4\n";

    fn addr(port: u16) -> SocketAddr {
        ([127, 0, 0, 1], port).into()
    }

    #[test]
    fn members_get_their_regions_latency_and_others_none() {
        let m = LatencyMatrix::parse(MATRIX).unwrap();
        let members = vec![(addr(1), "a".to_string()), (addr(2), "b".to_string())];
        let e = WanEmulation::new(&m, "a", &members, 0, 0.0).unwrap();
        assert_eq!(e.delay_to(addr(1)), Some(Duration::from_millis(1)));
        assert_eq!(e.delay_to(addr(2)), Some(Duration::from_millis(100)));
        assert_eq!(e.delay_to(addr(3)), None);
        assert_eq!(e.fate(addr(3)), None);
        assert_eq!(e.fate(addr(2)), Some(Some(Duration::from_millis(100))));
        let e = WanEmulation::new(&m, "b", &members, 0, 0.0).unwrap();
        assert_eq!(e.delay_to(addr(2)), Some(Duration::from_millis(2)));
    }

    #[test]
    fn jitter_stays_in_its_range_and_loss_drops_about_its_share() {
        let m = LatencyMatrix::parse(MATRIX).unwrap();
        let members = vec![(addr(2), "b".to_string())];
        let e = WanEmulation::new(&m, "a", &members, 10, 0.25).unwrap();
        let fates: Vec<_> = (0..4000).map(|_| e.fate(addr(2)).unwrap()).collect();
        let lost = fates.iter().filter(|f| f.is_none()).count();
        assert!((800..1200).contains(&lost), "{lost}");
        for d in fates.into_iter().flatten() {
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(110));
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        let m = LatencyMatrix::parse(MATRIX).unwrap();
        let members = vec![(addr(2), "c".to_string())];
        assert_eq!(
            WanEmulation::new(&m, "a", &members, 0, 0.0).unwrap_err(),
            EmulationError::UnknownRegion("c".into())
        );
        assert!(WanEmulation::new(&m, "z", &[], 0, 0.0).is_err());
        assert!(WanEmulation::new(&m, "a", &[], 0, 1.0).is_err());
        assert!(WanEmulation::new(&m, "a", &[], 0, f64::NAN).is_err());
        assert!(WanEmulation::new(&m, "a", &[], MAX_JITTER_MS + 1, 0.0).is_err());
    }
}
