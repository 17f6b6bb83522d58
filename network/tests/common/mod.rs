//! Helpers shared by the network integration tests.
#![allow(dead_code)]

use network::{Environment, Network, NetworkConfig, Receiver};
use primitives::crypto::KeyPair;
use primitives::parameters::NetworkParameters;
use primitives::{Committee, NodeId};
use std::net::SocketAddr;
use std::sync::Arc;

/// `n` UDP ports on 127.0.0.1 that were free a moment ago (held together while chosen,
/// so they are distinct).
pub fn free_ports(n: usize) -> Vec<u16> {
    let sockets: Vec<_> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

/// A committee of `n` on loopback, each primary on its own free port.
pub fn loopback_committee(n: usize, seed: u64) -> (Arc<Committee>, Vec<KeyPair>) {
    let (committee, keys) =
        Committee::generate(n, 1, &["127.0.0.1".into()], 20_000, Some(seed)).unwrap();
    let ports = free_ports(n);
    let mut file = committee.to_file();
    for (member, port) in file.member.iter_mut().zip(ports) {
        member.primary = format!("127.0.0.1:{port}");
    }
    (Arc::new(Committee::new(file).unwrap()), keys)
}

pub fn test_parameters() -> NetworkParameters {
    NetworkParameters {
        retry_min_delay_ms: 50,
        retry_max_delay_ms: 1_000,
        peer_queue_capacity: 20_000,
        inbound_queue_capacity: 100_000,
        ..NetworkParameters::default()
    }
}

pub fn config(
    committee: &Arc<Committee>,
    keys: &[KeyPair],
    id: u16,
    parameters: NetworkParameters,
) -> NetworkConfig {
    let member = committee.member(NodeId(id)).unwrap();
    let bind: SocketAddr = member.primary.parse().unwrap();
    NetworkConfig {
        id: NodeId(id),
        key: keys[id as usize].ed25519.clone(),
        committee: committee.clone(),
        parameters,
        environment: Environment::Udp,
        bind,
        rng_seed: None,
        twins: Default::default(),
    }
}

pub async fn start(
    committee: &Arc<Committee>,
    keys: &[KeyPair],
    id: u16,
    parameters: NetworkParameters,
) -> (Network, Receiver) {
    Network::start(config(committee, keys, id, parameters))
        .await
        .unwrap()
}

/// [`start`] with one inbound lane per entry of `lanes` (the channel bytes it takes).
pub async fn start_lanes<const N: usize>(
    committee: &Arc<Committee>,
    keys: &[KeyPair],
    id: u16,
    parameters: NetworkParameters,
    lanes: &[&[u8]; N],
) -> (Network, [Receiver; N]) {
    let (network, receivers) = Network::start_lanes(config(committee, keys, id, parameters), lanes)
        .await
        .unwrap();
    (network, receivers.try_into().ok().unwrap())
}

/// A payload on channel `channel`: the channel byte, a sequence number, padding.
pub fn on_channel(channel: u8, seq: u32, size: usize) -> bytes::Bytes {
    let mut v = vec![channel];
    v.extend_from_slice(&seq.to_be_bytes());
    v.resize(size, 0);
    v.into()
}

/// Message payload: claimed sender, sequence number, padding.
pub fn message(from: u16, seq: u32, size: usize) -> bytes::Bytes {
    let mut v = Vec::with_capacity(size.max(6));
    v.extend_from_slice(&from.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.resize(size.max(6), 0xab);
    v.into()
}

pub fn parse(payload: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([payload[0], payload[1]]),
        u32::from_be_bytes([payload[2], payload[3], payload[4], payload[5]]),
    )
}
