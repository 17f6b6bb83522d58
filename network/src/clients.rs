//! The client-facing transaction endpoint of a worker, and the client that talks to it.
//!
//! Unlike the committee endpoint, this one admits any client: clients present no
//! certificate (the client still checks the node's key against the committee). A client
//! opens a bidirectional stream, writes length-prefixed transactions on it, and reads
//! [`Notice`]s back.
//!
//! Admission control: the worker's intake ([`intake`]) holds at most a budget of bytes.
//! A transaction that does not fit within [`ADMISSION_WAIT`] is refused, not queued:
//! the endpoint never holds a client for long because the committee is past its
//! capacity (it waits on flow control at most that long per transaction), and it tells the
//! client exactly which transactions (by their index on the stream) it refused. Every
//! transaction with an index below a notice's `decided` that is not in a refused range
//! was accepted. So a client is never left guessing, and never disconnected, because
//! of overload.
//!
//! Limits, per connection: a transaction longer than `max_transaction_size` is refused
//! (the stream is stopped with [`REFUSED_TOO_LARGE`], which the client sees as a write
//! error carrying that code) and counted; a stream ending inside a transaction is
//! counted and its partial transaction discarded; at most `max_inflight_bytes` of one
//! connection's data are unread at any time (QUIC flow control), and every connection
//! waits its turn on the same bounded queue into the worker, so one abusive client
//! cannot starve the others or grow memory.

use crate::environment::Environment;
use crate::error::NetworkError;
use crate::frame::{FrameCodec, FrameError};
use crate::tls;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use primitives::crypto::ed25519;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::debug;

/// Application error code sent when a transaction exceeds the size limit.
pub const REFUSED_TOO_LARGE: u32 = 1;
/// Application error code sent when a stream ends inside a transaction.
pub const REFUSED_TRUNCATED: u32 = 2;
/// How long a transaction may wait for room in the intake before it is refused. While
/// it waits its stream is not read, so a briefly full intake slows the client through
/// QUIC flow control (no refusals, no CPU spent on transactions thrown away); an intake
/// that stays full refuses, and keeps refusing without waiting until there is room.
pub const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// What the endpoint tells a client about its stream: transactions with index below
/// `decided` are decided; those in `refused` (`from..to`, empty when `from == to`)
/// were refused, the rest accepted. On the wire: three big-endian u64s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notice {
    /// Every transaction with a smaller index has been accepted or refused.
    pub decided: u64,
    /// Refused indexes `refused.0..refused.1` (the latest run of refusals).
    pub refused: (u64, u64),
}

impl Notice {
    /// Bytes of an encoded notice.
    pub const SIZE: usize = 24;

    fn encode(&self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        out[..8].copy_from_slice(&self.decided.to_be_bytes());
        out[8..16].copy_from_slice(&self.refused.0.to_be_bytes());
        out[16..].copy_from_slice(&self.refused.1.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8; Self::SIZE]) -> Option<Notice> {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_be_bytes(w)
        };
        let notice = Notice {
            decided: word(0),
            refused: (word(1), word(2)),
        };
        (notice.refused.0 <= notice.refused.1 && notice.refused.1 <= notice.decided)
            .then_some(notice)
    }
}

/// A worker's bounded intake of client transactions: at most `capacity` bytes are
/// queued between the client endpoint and the batch maker.
pub fn intake(capacity: usize) -> (IntakeSender, IntakeReceiver) {
    // The channel's own bound only has to exceed what the byte budget admits.
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicU64::new(0));
    let room = Arc::new(tokio::sync::Notify::new());
    (
        IntakeSender {
            tx,
            queued: queued.clone(),
            room: room.clone(),
            capacity: capacity as u64,
        },
        IntakeReceiver { rx, queued, room },
    )
}

/// The client endpoint's half of an [`intake`].
#[derive(Clone)]
pub struct IntakeSender {
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicU64>,
    room: Arc<tokio::sync::Notify>,
    capacity: u64,
}

/// Why [`IntakeSender::admit`] did not take a transaction.
#[derive(Debug, PartialEq, Eq)]
pub enum AdmitError {
    /// The byte budget is spent: refuse it (the committee is past its capacity).
    Full,
    /// The worker is gone (shutdown).
    Closed,
}

impl IntakeSender {
    /// Queue `tx` if it fits in the byte budget. Never waits.
    pub fn admit(&self, tx: Bytes) -> Result<(), AdmitError> {
        if !self.reserve(tx.len() as u64) {
            return Err(AdmitError::Full);
        }
        self.send_reserved(tx)
    }

    /// Queue `tx`, waiting up to `wait` for room in the byte budget (while the caller
    /// waits it reads nothing more from its client, whose QUIC flow control then holds
    /// the client back); refused with [`AdmitError::Full`] if there is still no room.
    pub async fn admit_within(
        &self,
        tx: Bytes,
        wait: std::time::Duration,
    ) -> Result<(), AdmitError> {
        let len = tx.len() as u64;
        // The usual case, per transaction: room now, no waiter to set up.
        if self.reserve(len) {
            return self.send_reserved(tx);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.reserve(len) {
                return self.send_reserved(tx);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(AdmitError::Full);
            }
        }
    }

    fn reserve(&self, len: u64) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + len <= self.capacity).then_some(q + len)
            })
            .is_ok()
    }

    fn send_reserved(&self, tx: Bytes) -> Result<(), AdmitError> {
        let len = tx.len() as u64;
        self.tx.send(tx).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            AdmitError::Closed
        })
    }
}

/// The batch maker's half of an [`intake`].
pub struct IntakeReceiver {
    rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicU64>,
    room: Arc<tokio::sync::Notify>,
}

impl IntakeReceiver {
    /// The next transaction; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Bytes> {
        let tx = self.rx.recv().await?;
        self.queued.fetch_sub(tx.len() as u64, Ordering::AcqRel);
        self.room.notify_waiters();
        Some(tx)
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> u64 {
        self.queued.load(Ordering::Acquire)
    }
}

/// Counters of a client-facing endpoint.
#[derive(Debug, Default)]
pub struct ClientMetrics {
    connections: AtomicU64,
    transactions: AtomicU64,
    refused_overload: AtomicU64,
    bytes: AtomicU64,
    refused_too_large: AtomicU64,
    truncated: AtomicU64,
    stream_errors: AtomicU64,
}

/// A copy of [`ClientMetrics`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientMetricsSnapshot {
    /// Client connections accepted.
    pub connections: u64,
    /// Transactions accepted.
    pub transactions: u64,
    /// Transactions refused because the intake was full (their clients were told).
    pub refused_overload: u64,
    /// Bytes of accepted transactions.
    pub bytes: u64,
    /// Transactions refused for exceeding the size limit.
    pub refused_too_large: u64,
    /// Streams that ended inside a transaction.
    pub truncated: u64,
    /// Streams that failed (reset, connection lost).
    pub stream_errors: u64,
}

impl ClientMetrics {
    /// A copy of the counters.
    pub fn snapshot(&self) -> ClientMetricsSnapshot {
        ClientMetricsSnapshot {
            connections: self.connections.load(Ordering::Relaxed),
            transactions: self.transactions.load(Ordering::Relaxed),
            refused_overload: self.refused_overload.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            refused_too_large: self.refused_too_large.load(Ordering::Relaxed),
            truncated: self.truncated.load(Ordering::Relaxed),
            stream_errors: self.stream_errors.load(Ordering::Relaxed),
        }
    }
}

/// What a client-facing endpoint needs.
pub struct ClientListenerConfig {
    /// The node's ed25519 key (its TLS identity, which clients check).
    pub key: ed25519_dalek::SigningKey,
    /// Where to listen.
    pub bind: SocketAddr,
    /// Real UDP or turmoil.
    pub environment: Environment,
    /// Largest transaction accepted.
    pub max_transaction_size: usize,
    /// Unread bytes one connection may have in flight.
    pub max_inflight_bytes: usize,
    /// QUIC randomness seed (simulation only).
    pub rng_seed: Option<[u8; 32]>,
}

/// A running client-facing endpoint; stops when dropped.
pub struct ClientListener {
    endpoint: quinn::Endpoint,
    metrics: Arc<ClientMetrics>,
    task: JoinHandle<()>,
}

impl ClientListener {
    /// Listen for clients and offer every transaction to `sink`, refusing (and
    /// telling the client) what does not fit.
    pub async fn start(
        config: ClientListenerConfig,
        sink: IntakeSender,
    ) -> Result<ClientListener, NetworkError> {
        let identity = tls::identity(&config.key).map_err(NetworkError::Tls)?;
        let server_tls = tls::open_server_config(&identity).map_err(NetworkError::Tls)?;
        let quic =
            QuicServerConfig::try_from(server_tls).map_err(|e| NetworkError::Tls(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
        let window = u32::try_from(config.max_inflight_bytes).unwrap_or(u32::MAX);
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(4u32.into())
            .max_concurrent_uni_streams(0u32.into())
            .stream_receive_window(window.into())
            .receive_window(window.into());
        server.transport_config(Arc::new(transport));
        let mut endpoint_config = quinn::EndpointConfig::default();
        endpoint_config.rng_seed(config.rng_seed);
        let endpoint = config
            .environment
            .endpoint(config.bind, endpoint_config, Some(server))
            .await
            .map_err(|source| NetworkError::Bind {
                addr: config.bind,
                source,
            })?;
        let metrics = Arc::new(ClientMetrics::default());
        let task = tokio::spawn(accept_clients(
            endpoint.clone(),
            sink,
            metrics.clone(),
            config.max_transaction_size,
        ));
        Ok(ClientListener {
            endpoint,
            metrics,
            task,
        })
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<ClientMetrics> {
        &self.metrics
    }
}

impl Drop for ClientListener {
    fn drop(&mut self) {
        self.endpoint.close(0u32.into(), b"shutdown");
        self.task.abort();
    }
}

async fn accept_clients(
    endpoint: quinn::Endpoint,
    sink: IntakeSender,
    metrics: Arc<ClientMetrics>,
    max_transaction_size: usize,
) {
    while let Some(incoming) = endpoint.accept().await {
        let sink = sink.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let Ok(connection) = incoming.await else {
                return;
            };
            metrics.connections.fetch_add(1, Ordering::Relaxed);
            while let Ok((send, recv)) = connection.accept_bi().await {
                tokio::spawn(read_transactions(
                    send,
                    recv,
                    sink.clone(),
                    metrics.clone(),
                    max_transaction_size,
                ));
            }
        });
    }
}

/// Read one client stream: offer each transaction to the intake, and send notices:
/// when a run of refusals ends, and when the stream ends (so a client that is never
/// refused hears nothing until it finishes, and the stream costs nothing extra).
async fn read_transactions(
    mut notices: quinn::SendStream,
    stream: quinn::RecvStream,
    sink: IntakeSender,
    metrics: Arc<ClientMetrics>,
    max_transaction_size: usize,
) {
    let mut frames = FramedRead::new(stream, FrameCodec::new(max_transaction_size));
    let mut index = 0u64;
    let mut refused: Option<u64> = None; // start of the current run of refusals
    loop {
        let frame = frames.next().await;
        let mut notice = None;
        match frame {
            Some(Ok(tx)) => {
                let len = tx.len() as u64;
                // Wait for room only at the start of a refusal: within a run of
                // refusals the intake is known to be stuck, and each further wait
                // would only hold the client.
                let admitted = if refused.is_some() {
                    sink.admit(tx.freeze())
                } else {
                    sink.admit_within(tx.freeze(), ADMISSION_WAIT).await
                };
                match admitted {
                    Ok(()) => {
                        metrics.transactions.fetch_add(1, Ordering::Relaxed);
                        metrics.bytes.fetch_add(len, Ordering::Relaxed);
                        if let Some(from) = refused.take() {
                            notice = Some(Notice {
                                decided: index,
                                refused: (from, index),
                            });
                        }
                    }
                    Err(AdmitError::Full) => {
                        metrics.refused_overload.fetch_add(1, Ordering::Relaxed);
                        refused.get_or_insert(index);
                    }
                    Err(AdmitError::Closed) => return,
                }
                index += 1;
            }
            None => {
                // The client finished: the final word on everything it sent.
                let from = refused.take().unwrap_or(index);
                let _ = notices
                    .write_all(
                        &Notice {
                            decided: index,
                            refused: (from, index),
                        }
                        .encode(),
                    )
                    .await;
                let _ = notices.finish();
                let _ = notices.stopped().await;
                return;
            }
            Some(Err(e)) => {
                debug!(error = %e, "refusing client stream");
                let code = match e {
                    FrameError::Oversized => {
                        metrics.refused_too_large.fetch_add(1, Ordering::Relaxed);
                        REFUSED_TOO_LARGE
                    }
                    FrameError::Truncated => {
                        metrics.truncated.fetch_add(1, Ordering::Relaxed);
                        REFUSED_TRUNCATED
                    }
                    FrameError::Io(_) => {
                        metrics.stream_errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                let _ = frames.get_mut().stop(code.into());
                let _ = notices.reset(code.into());
                return;
            }
        }
        if let Some(notice) = notice {
            // A client that does not read its notices stalls only its own stream (the
            // notice stream's flow-control window bounds what waits here).
            if notices.write_all(&notice.encode()).await.is_err() {
                metrics.stream_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Why a transaction client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Setting up the client endpoint failed.
    #[error("client setup: {0}")]
    Setup(String),
    /// Could not reach or authenticate the node.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// The node's address.
        address: String,
        /// Why.
        reason: String,
    },
    /// The node refused a transaction or the connection broke.
    #[error("submission failed: {0}")]
    Submit(String),
}

/// What a client has learnt from the node's [`Notice`]s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// Transactions submitted on the stream.
    pub sent: u64,
    /// Transactions the node has decided on (accepted or refused).
    pub decided: u64,
    /// Of those, refused.
    pub refused: u64,
}

#[derive(Default)]
struct NoticeLog {
    decided: u64,
    refused: u64,
    /// Refused index ranges not yet taken by [`TransactionClient::take_refused`].
    ranges: Vec<(u64, u64)>,
}

/// A client submitting transactions to one worker over one QUIC stream, learning from
/// the node's notices which it refused (see the module documentation).
pub struct TransactionClient {
    _endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    stream: FramedWrite<quinn::SendStream, FrameCodec>,
    sent: u64,
    log: Arc<std::sync::Mutex<NoticeLog>>,
    reader: JoinHandle<()>,
}

/// Read notices until the node finishes the stream (or it breaks).
async fn read_notices(mut recv: quinn::RecvStream, log: Arc<std::sync::Mutex<NoticeLog>>) {
    let mut buf = [0u8; Notice::SIZE];
    while recv.read_exact(&mut buf).await.is_ok() {
        let Some(notice) = Notice::decode(&buf) else {
            return; // not a notice: stop listening rather than believe it
        };
        let Ok(mut log) = log.lock() else { return };
        if notice.decided < log.decided {
            continue;
        }
        log.decided = notice.decided;
        let (from, to) = notice.refused;
        if to > from {
            log.refused += to - from;
            log.ranges.push((from, to));
        }
    }
}

impl TransactionClient {
    /// Connect to the worker at `address`, whose node key must be `node_key`.
    /// `rng_seed` seeds QUIC's randomness (set it in simulations so runs replay).
    pub async fn connect(
        environment: Environment,
        address: &str,
        node_key: ed25519::PublicKey,
        max_transaction_size: usize,
        rng_seed: Option<[u8; 32]>,
    ) -> Result<Self, ClientError> {
        Self::connect_sized(
            environment,
            address,
            node_key,
            max_transaction_size,
            rng_seed,
            0,
        )
        .await
    }

    /// [`TransactionClient::connect`], sending datagrams of `max_udp_payload` bytes
    /// (path MTU discovery off) instead of QUIC's own size when it is not 0, as a node
    /// does with `network.max_udp_payload`: for a path known to carry them, such as
    /// loopback. A node's client endpoint takes datagrams of up to 65,527 bytes; what it
    /// sends back (notices, acknowledgements) keeps QUIC's own size. A size in `1200..=`
    /// [`crate::MAX_REAL_UDP_PAYLOAD`] is accepted on a real socket, else
    /// [`ClientError::Setup`].
    pub async fn connect_sized(
        environment: Environment,
        address: &str,
        node_key: ed25519::PublicKey,
        max_transaction_size: usize,
        rng_seed: Option<[u8; 32]>,
        max_udp_payload: u16,
    ) -> Result<Self, ClientError> {
        environment
            .check_udp_payload(max_udp_payload)
            .map_err(ClientError::Setup)?;
        let connect_err = |reason: String| ClientError::Connect {
            address: address.to_string(),
            reason,
        };
        let tls = tls::anonymous_client_config(node_key, Arc::new(crate::Metrics::default()))
            .map_err(ClientError::Setup)?;
        let quic =
            QuicClientConfig::try_from(tls).map_err(|e| ClientError::Setup(e.to_string()))?;
        let mut client_config = quinn::ClientConfig::new(Arc::new(quic));
        if max_udp_payload != 0 {
            let mut transport = quinn::TransportConfig::default();
            crate::environment::fix_udp_payload(&mut transport, max_udp_payload);
            client_config.transport_config(Arc::new(transport));
        }
        let server_config = None;
        let mut endpoint_config = quinn::EndpointConfig::default();
        endpoint_config.rng_seed(rng_seed);
        let bind: SocketAddr = ([0, 0, 0, 0], 0).into();
        let endpoint = environment
            .endpoint(bind, endpoint_config, server_config)
            .await
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        let addr = environment
            .resolve(address)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let connection = endpoint
            .connect_with(client_config, addr, "bftlab")
            .map_err(|e| connect_err(e.to_string()))?
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let (stream, notices) = connection
            .open_bi()
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let log = Arc::new(std::sync::Mutex::new(NoticeLog::default()));
        let reader = tokio::spawn(read_notices(notices, log.clone()));
        Ok(TransactionClient {
            _endpoint: endpoint,
            connection,
            stream: FramedWrite::new(stream, FrameCodec::new(max_transaction_size)),
            sent: 0,
            log,
            reader,
        })
    }

    /// Queue a transaction (sent when the buffer fills or on [`TransactionClient::flush`]);
    /// returns its index on the stream, which notices refer to.
    pub async fn submit(&mut self, transaction: Bytes) -> Result<u64, ClientError> {
        self.stream
            .feed(transaction)
            .await
            .map_err(|e| ClientError::Submit(e.to_string()))?;
        self.sent += 1;
        Ok(self.sent - 1)
    }

    /// What the node has said so far.
    pub fn admission(&self) -> Admission {
        let (decided, refused) = self
            .log
            .lock()
            .map(|l| (l.decided, l.refused))
            .unwrap_or_default();
        Admission {
            sent: self.sent,
            decided,
            refused,
        }
    }

    /// The index ranges `from..to` refused since the last call.
    pub fn take_refused(&self) -> Vec<(u64, u64)> {
        self.log
            .lock()
            .map(|mut l| std::mem::take(&mut l.ranges))
            .unwrap_or_default()
    }

    /// Push queued transactions onto the wire.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.stream
            .flush()
            .await
            .map_err(|e| ClientError::Submit(e.to_string()))
    }

    /// Flush, close the stream and wait for the node's final notice (it decides on
    /// every transaction sent); returns what it said, with any refused ranges not yet
    /// taken.
    pub async fn finish(mut self) -> Result<(Admission, Vec<(u64, u64)>), ClientError> {
        self.flush().await?;
        let stream = self.stream.get_mut();
        stream
            .finish()
            .map_err(|e| ClientError::Submit(e.to_string()))?;
        let _ = (&mut self.reader).await;
        let admission = self.admission();
        let refused = self.take_refused();
        self.connection.close(0u32.into(), b"done");
        if admission.decided < admission.sent {
            return Err(ClientError::Submit(format!(
                "the node decided on {} of {} transactions before the stream closed",
                admission.decided, admission.sent
            )));
        }
        Ok((admission, refused))
    }
}

impl Drop for TransactionClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
