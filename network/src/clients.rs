//! The client-facing transaction endpoint of a worker, and the client that talks to it.
//!
//! Unlike the committee endpoint, this one admits any client: clients present no
//! certificate (the client still checks the node's key against the committee). A client
//! opens unidirectional streams and writes length-prefixed transactions on them.
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

/// Counters of a client-facing endpoint.
#[derive(Debug, Default)]
pub struct ClientMetrics {
    connections: AtomicU64,
    transactions: AtomicU64,
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
    /// Listen for clients and push every accepted transaction into `sink`.
    pub async fn start(
        config: ClientListenerConfig,
        sink: mpsc::Sender<Bytes>,
    ) -> Result<ClientListener, NetworkError> {
        let identity = tls::identity(&config.key).map_err(NetworkError::Tls)?;
        let server_tls = tls::open_server_config(&identity).map_err(NetworkError::Tls)?;
        let quic =
            QuicServerConfig::try_from(server_tls).map_err(|e| NetworkError::Tls(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
        let window = u32::try_from(config.max_inflight_bytes).unwrap_or(u32::MAX);
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(0u32.into())
            .max_concurrent_uni_streams(4u32.into())
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
    sink: mpsc::Sender<Bytes>,
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
            while let Ok(stream) = connection.accept_uni().await {
                tokio::spawn(read_transactions(
                    stream,
                    sink.clone(),
                    metrics.clone(),
                    max_transaction_size,
                ));
            }
        });
    }
}

async fn read_transactions(
    stream: quinn::RecvStream,
    sink: mpsc::Sender<Bytes>,
    metrics: Arc<ClientMetrics>,
    max_transaction_size: usize,
) {
    let mut frames = FramedRead::new(stream, FrameCodec::new(max_transaction_size));
    while let Some(frame) = frames.next().await {
        match frame {
            Ok(tx) => {
                metrics.transactions.fetch_add(1, Ordering::Relaxed);
                metrics.bytes.fetch_add(tx.len() as u64, Ordering::Relaxed);
                if sink.send(tx.freeze()).await.is_err() {
                    return;
                }
            }
            Err(e) => {
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

/// A client submitting transactions to one worker over one QUIC stream.
pub struct TransactionClient {
    _endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    stream: FramedWrite<quinn::SendStream, FrameCodec>,
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
        let connect_err = |reason: String| ClientError::Connect {
            address: address.to_string(),
            reason,
        };
        let tls = tls::anonymous_client_config(node_key, Arc::new(crate::Metrics::default()))
            .map_err(ClientError::Setup)?;
        let quic =
            QuicClientConfig::try_from(tls).map_err(|e| ClientError::Setup(e.to_string()))?;
        let client_config = quinn::ClientConfig::new(Arc::new(quic));
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
        let stream = connection
            .open_uni()
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        Ok(TransactionClient {
            _endpoint: endpoint,
            connection,
            stream: FramedWrite::new(stream, FrameCodec::new(max_transaction_size)),
        })
    }

    /// Queue a transaction (sent when the buffer fills or on [`TransactionClient::flush`]).
    pub async fn submit(&mut self, transaction: Bytes) -> Result<(), ClientError> {
        self.stream
            .feed(transaction)
            .await
            .map_err(|e| ClientError::Submit(e.to_string()))
    }

    /// Push queued transactions onto the wire.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.stream
            .flush()
            .await
            .map_err(|e| ClientError::Submit(e.to_string()))
    }

    /// Flush, close the stream and wait until the node has read everything.
    pub async fn finish(mut self) -> Result<(), ClientError> {
        self.flush().await?;
        let stream = self.stream.get_mut();
        stream
            .finish()
            .map_err(|e| ClientError::Submit(e.to_string()))?;
        let _ = stream.stopped().await;
        self.connection.close(0u32.into(), b"done");
        Ok(())
    }
}
