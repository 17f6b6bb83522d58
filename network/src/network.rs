//! Assembling the endpoint, the peer tasks and the accept loop.

use crate::environment::Environment;
use crate::error::NetworkError;
use crate::inbound::Lanes;
use crate::metrics::Metrics;
use crate::receiver::{Inbound, Receiver};
use crate::sender::{ConnectionSlot, Peer, PeerTask, Sender, SenderInner};
use crate::tls;
use primitives::parameters::NetworkParameters;
use primitives::{Committee, NodeId};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What a node needs to join the committee's network.
pub struct NetworkConfig {
    /// This node's id.
    pub id: NodeId,
    /// This node's ed25519 identity key; must match its committee entry.
    pub key: ed25519_dalek::SigningKey,
    /// The committee (peers, their keys and addresses).
    pub committee: Arc<Committee>,
    /// Limits and timers.
    pub parameters: NetworkParameters,
    /// Real UDP or turmoil.
    pub environment: Environment,
    /// Local address to bind the QUIC endpoint to (usually `0.0.0.0:<primary port>`).
    pub bind: SocketAddr,
    /// Seed for QUIC's own randomness (connection ids, etc.). Simulations set it from
    /// the scenario seed and the node id so that runs replay; real nodes leave it `None`.
    pub rng_seed: Option<[u8; 32]>,
    /// Twins testing only (simulations; empty elsewhere): members that run twice, two
    /// instances with one identity, and the address of each one's second instance.
    /// Everything sent to such a member goes to both of its instances (a reliable
    /// message is delivered once either acknowledges it), and both may be connected to
    /// this node at once (a dial from one does not close the other's connection).
    pub twins: BTreeMap<NodeId, String>,
}

/// A running transport: one QUIC endpoint, a connection task per peer, an accept loop.
/// Dropping it (or [`Network::shutdown`]) stops everything.
pub struct Network {
    endpoint: quinn::Endpoint,
    sender: Sender,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    lanes: Arc<Lanes>,
}

fn transport_config(p: &NetworkParameters) -> Result<quinn::TransportConfig, NetworkError> {
    let mut t = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(Duration::from_millis(p.idle_timeout_ms))
        .map_err(|e| NetworkError::Tls(e.to_string()))?;
    let frame = u32::try_from(p.max_frame_size).unwrap_or(u32::MAX);
    t.max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(Duration::from_millis(p.keep_alive_ms)))
        // Reliable messages share two streams per connection (`reliable.rs`); a few more
        // let a broken one be replaced before the peer has released it. Each stream can
        // make the receiver hold a bounded amount, so a peer holds few.
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(8))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(8))
        .stream_receive_window(quinn::VarInt::from_u32(frame.max(1 << 20)))
        .receive_window(quinn::VarInt::from_u32(
            frame.saturating_mul(4).max(8 << 20),
        ))
        .send_window(u64::from(frame).saturating_mul(4).max(8 << 20));
    // A fixed datagram size (checked against the environment at start): no discovery,
    // no probes.
    crate::environment::fix_udp_payload(&mut t, p.max_udp_payload);
    if p.ack_eliciting_threshold > 1 {
        let mut ack = quinn::AckFrequencyConfig::default();
        ack.ack_eliciting_threshold(quinn::VarInt::from_u32(p.ack_eliciting_threshold));
        t.ack_frequency_config(Some(ack));
    }
    Ok(t)
}

impl Network {
    /// Bind the endpoint and start connecting to every other member; every message
    /// arrives on the one [`Receiver`] returned. Must be called inside a tokio runtime
    /// (inside a turmoil host for [`Environment::Turmoil`]).
    pub async fn start(config: NetworkConfig) -> Result<(Network, Receiver), NetworkError> {
        let (network, mut receivers) = Self::start_lanes(config, &[]).await?;
        let receiver = receivers
            .pop()
            .ok_or(NetworkError::Tls("no inbound lane".into()))?;
        Ok((network, receiver))
    }

    /// Like [`Network::start`], with one [`Receiver`] per entry of `lanes` (in that
    /// order), each taking the messages whose first byte (the channel) it lists. A
    /// message of another channel is dropped and counted as
    /// [`crate::DropReason::UnknownChannel`]. Lanes never wait for each other: a node
    /// slow to take one kind of traffic does not hold up another, and within a lane
    /// every member has its own bounded queue (see [`Receiver`]).
    pub async fn start_lanes(
        config: NetworkConfig,
        lanes: &[&[u8]],
    ) -> Result<(Network, Vec<Receiver>), NetworkError> {
        let NetworkConfig {
            id,
            key,
            committee,
            parameters,
            environment,
            bind,
            rng_seed,
            twins,
        } = config;
        let me = committee.member(id).ok_or(NetworkError::NotAMember(id))?;
        if me.public_key.0 != key.verifying_key().to_bytes() {
            return Err(NetworkError::KeyMismatch(id));
        }
        let metrics = Arc::new(Metrics::default());
        let identity = tls::identity(&key).map_err(NetworkError::Tls)?;
        let transport = Arc::new(transport_config(&parameters)?);

        let server_tls = tls::server_config(&identity, committee.clone(), metrics.clone())
            .map_err(NetworkError::Tls)?;
        let quic_server =
            QuicServerConfig::try_from(server_tls).map_err(|e| NetworkError::Tls(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic_server));
        server.transport_config(transport.clone());

        environment
            .check_udp_payload(parameters.max_udp_payload)
            .map_err(NetworkError::Parameter)?;
        let mut endpoint_config = quinn::EndpointConfig::new(stateless_reset_key(&key));
        endpoint_config.rng_seed(rng_seed);
        if parameters.max_udp_payload != 0 {
            endpoint_config
                .max_udp_payload_size(parameters.max_udp_payload)
                .map_err(|e| NetworkError::Parameter(format!("max_udp_payload: {e}")))?;
        }
        let endpoint = environment
            .endpoint(bind, endpoint_config, Some(server))
            .await
            .map_err(|source| NetworkError::Bind { addr: bind, source })?;

        let shutdown = CancellationToken::new();
        let lanes = Arc::new(Lanes::new(
            committee.members().iter().map(|m| m.id),
            lanes,
            parameters.inbound_peer_bytes,
            parameters.inbound_queue_capacity,
            metrics.clone(),
        ));
        let receivers = lanes
            .lanes()
            .map(|lane| Receiver { lane: lane.clone() })
            .collect();
        let span = tracing::info_span!("net", node = %id);
        let mut tasks = Vec::new();
        let mut peers = HashMap::new();
        let mut twin_peers = HashMap::new();
        for member in committee.members().iter().filter(|m| m.id != id) {
            let addresses = std::iter::once((member.primary.clone(), false))
                .chain(twins.get(&member.id).map(|a| (a.clone(), true)));
            for (address, second) in addresses {
                let client_tls = tls::client_config(&identity, member.public_key, metrics.clone())
                    .map_err(NetworkError::Tls)?;
                let quic_client = QuicClientConfig::try_from(client_tls)
                    .map_err(|e| NetworkError::Tls(e.to_string()))?;
                let mut client_config = quinn::ClientConfig::new(Arc::new(quic_client));
                client_config.transport_config(transport.clone());
                let (queue_tx, queue_rx) = mpsc::channel(parameters.peer_queue_capacity);
                let (urgent_tx, urgent_rx) = mpsc::channel(parameters.peer_queue_capacity);
                let slot = Arc::new(ConnectionSlot::default());
                let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let task = PeerTask {
                    peer: member.id,
                    address,
                    endpoint: endpoint.clone(),
                    client_config,
                    environment,
                    connection: slot.clone(),
                    queue: queue_rx,
                    urgent: urgent_rx,
                    queued: queued.clone(),
                    metrics: metrics.clone(),
                    parameters: parameters.clone(),
                };
                let peer_span =
                    tracing::debug_span!(parent: &span, "peer", peer = %member.id, twin = second);
                tasks.push(tokio::spawn(task.run().instrument(peer_span)));
                let peer = Peer {
                    queue: queue_tx,
                    urgent: urgent_tx,
                    queued,
                    connection: slot,
                    inflight: Arc::new(Semaphore::new(parameters.max_inflight_reliable)),
                };
                if second {
                    twin_peers.insert(member.id, peer);
                } else {
                    peers.insert(member.id, peer);
                }
            }
        }
        let inbound = Inbound {
            committee: committee.clone(),
            lanes: lanes.clone(),
            metrics: metrics.clone(),
            max_frame_size: parameters.max_frame_size,
            max_unanswered: parameters.max_inflight_reliable,
            outgoing: Arc::new(
                peers
                    .iter()
                    .map(|(id, p): (&NodeId, &crate::sender::Peer)| (*id, p.connection.clone()))
                    .collect(),
            ),
            latest: Arc::default(),
            twinned: Arc::new(twins.keys().copied().collect::<BTreeSet<NodeId>>()),
        };
        tasks.push(tokio::spawn(
            inbound.accept_loop(endpoint.clone()).instrument(span),
        ));
        let mut others: Vec<NodeId> = peers.keys().copied().collect();
        others.sort();
        let sender = Sender {
            inner: Arc::new(SenderInner {
                me: id,
                peers,
                twins: twin_peers,
                others,
                own_inbound: lanes.clone(),
                metrics: metrics.clone(),
                parameters,
                shutdown: shutdown.clone(),
            }),
        };
        Ok((
            Network {
                endpoint,
                sender,
                metrics,
                shutdown,
                tasks,
                lanes,
            },
            receivers,
        ))
    }

    /// A handle for sending.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint.local_addr().ok()
    }

    /// Close every connection, cancel pending reliable messages, stop all tasks.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
        let inner = &self.sender.inner;
        for peer in inner.peers.values().chain(inner.twins.values()) {
            peer.connection.close();
        }
        self.endpoint.close(0u32.into(), b"shutdown");
        for task in &self.tasks {
            task.abort();
        }
        self.lanes.close();
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The key of QUIC stateless resets, derived from the node's identity so that it is the
/// same in every incarnation of the node: after a restart, packets of a connection the
/// old incarnation held are answered with a reset the peer recognises, and the peer
/// reconnects at once instead of waiting out the idle timeout. (quinn's default key is
/// random per endpoint.)
fn stateless_reset_key(key: &ed25519_dalek::SigningKey) -> Arc<dyn quinn::crypto::HmacKey> {
    let derived = blake3::derive_key("bftlab 2026-11 quic stateless reset key", &key.to_bytes());
    Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &derived))
}
