//! Tunable parameters of a node, with documented defaults, loaded from and saved to TOML.
//!
//! Every field has a default, so a parameters file need only list what it changes;
//! unknown fields are an error (a typo must not silently fall back to a default).
//! Durations are in milliseconds.

use crate::crypto::SignatureScheme;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// All parameters of a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Parameters {
    /// Signature scheme for votes and quorum certificates (mempool certificates and
    /// consensus QCs alike). Default: `ed25519`.
    pub signature_scheme: SignatureScheme,
    /// Transport limits and timers.
    pub network: NetworkParameters,
    /// DAG mempool.
    pub mempool: MempoolParameters,
    /// Consensus: one `[consensus.<protocol>]` table per protocol, read by that
    /// protocol's configuration in the consensus crate (which refuses unknown protocols
    /// and keys); a protocol without a table runs on its defaults.
    pub consensus: BTreeMap<String, toml::Table>,
}

/// Transport parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkParameters {
    /// Largest frame a node sends or accepts, in bytes. Default 8 MiB (a full batch
    /// plus headroom). At most [`crate::codec::HARD_LIMIT`].
    pub max_frame_size: usize,
    /// Outgoing best-effort messages queued per peer before new ones are dropped
    /// (counted). Default 10,000.
    pub peer_queue_capacity: usize,
    /// Bytes of outgoing best-effort messages queued per peer (both lanes) before new
    /// ones are dropped (counted as `queue-bytes`): what one peer's requests can make
    /// this node hold for it. A message is always accepted into an empty queue.
    /// Default 64 MiB.
    pub peer_queue_bytes: usize,
    /// Reliable messages in flight per peer before senders wait. Default 1,000.
    pub max_inflight_reliable: usize,
    /// Incoming messages buffered per member and lane before that member's readers
    /// apply back-pressure. Default 10,000.
    pub inbound_queue_capacity: usize,
    /// Bytes of incoming messages buffered per member and lane before that member's
    /// readers apply back-pressure (QUIC flow control then slows that member alone). A
    /// message is always accepted into an empty queue. Default 8 MiB.
    pub inbound_peer_bytes: usize,
    /// First reconnect / resend delay; doubles on each failure. Default 200 ms.
    pub retry_min_delay_ms: u64,
    /// Largest reconnect / resend delay. Default 5,000 ms.
    pub retry_max_delay_ms: u64,
    /// QUIC keep-alive interval. Default 1,000 ms.
    pub keep_alive_ms: u64,
    /// QUIC idle timeout: a connection silent this long is declared dead. Default 10,000 ms.
    pub idle_timeout_ms: u64,
    /// An outgoing connection that received nothing for this long (not even the
    /// acknowledgement of a keep-alive) gets a fresh connection dialled beside it, which
    /// replaces it once up. A connection that outlives a partition has backed its probe
    /// timer off exponentially and would otherwise resume seconds after the heal.
    /// It also bounds every dial: a handshake unanswered this long is given up and a
    /// fresh one sent (a dial into a partition backs off the same way).
    /// Default 3,000 ms; 0 never redials (only the idle timeout ends a silent connection,
    /// and a dial lasts until the handshake's own timeout).
    pub silent_redial_ms: u64,
    /// Packets carrying data a peer may receive before it must acknowledge them (QUIC's
    /// acknowledgement frequency extension, draft-ietf-quic-ack-frequency, which this
    /// node asks its peers to follow): the peer acknowledges after more than this many,
    /// or after its `max_ack_delay` (25 ms), or at once on reordering. 1 is QUIC's own
    /// behaviour (an acknowledgement every second packet) and leaves the extension off.
    /// Higher means fewer acknowledgement-only packets to build, encrypt, send and
    /// process. Default 1; at most 1,000.
    pub ack_eliciting_threshold: u32,
    /// Largest UDP payload this node sends and accepts, in bytes (the path MTU less the
    /// IP and UDP headers). 0, the default, is QUIC's own behaviour: datagrams of 1,200
    /// bytes at first, raised by path MTU discovery up to 1,452 (an Ethernet MTU). A
    /// value from 1,200 to 65,527 fixes the size instead, with discovery off: for a path
    /// known to carry it, such as loopback or a LAN of jumbo frames (8,952 for an MTU of
    /// 9,000), where a larger datagram carries a typical certificate or vote batch in one
    /// packet instead of two or more. A simulation sets it to model such a network, and
    /// because turmoil delays each datagram independently, a message then also arrives
    /// whole at once instead of at the latest of its packets' delays. Every member of a
    /// committee should use the same value: QUIC sends a peer no datagram larger than
    /// the peer announced, so a member with a smaller value makes its links smaller.
    /// On a real UDP socket the transport refuses more than 6,550
    /// (`network::MAX_REAL_UDP_PAYLOAD`: ten datagrams go to the kernel in one
    /// segmentation-offload send of at most 64 KiB); `bftlab local` uses 6,000 on
    /// loopback. Simulated sockets take up to 65,527.
    pub max_udp_payload: u16,
}

/// Mempool (Narwhal) parameters. Defaults are those of the Narwhal paper's benchmark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolParameters {
    /// A header is proposed once it carries this many bytes of batch digests. Default 1,000.
    pub header_size: usize,
    /// ... or once this much time passed since the last one. Default 100 ms.
    pub max_header_delay_ms: u64,
    /// Most batch digests one header may carry. Default 1,000.
    pub max_header_batches: usize,
    /// A worker seals a batch at this many bytes. Default 500,000.
    pub batch_size: usize,
    /// ... or once this much time passed since its first transaction. Default 100 ms.
    pub max_batch_delay_ms: u64,
    /// Largest single transaction accepted from a client. Default 128 KiB.
    pub max_transaction_size: usize,
    /// Rounds kept below the last committed round before garbage collection. Default 50.
    pub gc_depth: u64,
    /// Rounds of committed history (the committed certificates in sequence order, and
    /// their batches) a node keeps beyond `gc_depth` so that peers that fell behind the
    /// garbage-collection horizon can fetch what they missed. Default 3,000 (minutes at
    /// the benchmark's round rate). 0 keeps none: a lagging node cannot catch up.
    pub history_retention_rounds: u64,
    /// Headers more than this many rounds ahead of the node's round are dropped. Default 1,000.
    pub max_round_lookahead: u64,
    /// Delay before re-requesting missing data from peers. Default 10,000 ms.
    pub sync_retry_delay_ms: u64,
    /// Peers asked on each retry. Default 3.
    pub sync_retry_nodes: usize,
    /// Bytes of transactions one client connection may have in flight (its QUIC
    /// window: unread bytes queue here, so it bounds a client's share of latency under
    /// overload). Default 2 MiB.
    pub max_client_inflight_bytes: usize,
    /// Bytes of accepted client transactions a worker may hold before sealing them
    /// (admission control): past it, new transactions are refused and their clients
    /// told so, instead of queueing without bound. At least `max_transaction_size`.
    /// Default 2 MiB.
    pub max_intake_bytes: usize,
    /// After a quorum stored a batch, how long its worker keeps resending it to the
    /// peers that have not acknowledged it; they fetch it later if they need it.
    /// Default 2,000 ms.
    pub batch_resend_window_ms: u64,
}

impl Default for NetworkParameters {
    fn default() -> Self {
        NetworkParameters {
            max_frame_size: 8 << 20,
            peer_queue_capacity: 10_000,
            peer_queue_bytes: 64 << 20,
            max_inflight_reliable: 1_000,
            inbound_queue_capacity: 10_000,
            inbound_peer_bytes: 8 << 20,
            retry_min_delay_ms: 200,
            retry_max_delay_ms: 5_000,
            keep_alive_ms: 1_000,
            idle_timeout_ms: 10_000,
            silent_redial_ms: 3_000,
            ack_eliciting_threshold: 1,
            max_udp_payload: 0,
        }
    }
}

impl MempoolParameters {
    /// Rounds a node remembers the batches it delivered, counted from the committed
    /// round their delivery reached: `2 * gc_depth`, or `gc_depth +
    /// history_retention_rounds` if longer. A batch delivered again within it (its
    /// author re-proposed it, believing it orphaned) is skipped, so it is executed once;
    /// an author re-proposes only within this memory.
    pub fn batch_memory_rounds(&self) -> u64 {
        batch_memory_rounds(self.gc_depth, self.history_retention_rounds)
    }
}

/// [`MempoolParameters::batch_memory_rounds`] from its two parameters.
pub fn batch_memory_rounds(gc_depth: u64, history_retention_rounds: u64) -> u64 {
    gc_depth
        .saturating_mul(2)
        .max(gc_depth.saturating_add(history_retention_rounds))
}

impl Default for MempoolParameters {
    fn default() -> Self {
        MempoolParameters {
            header_size: 1_000,
            max_header_delay_ms: 100,
            max_header_batches: 1_000,
            batch_size: 500_000,
            max_batch_delay_ms: 100,
            max_transaction_size: 128 << 10,
            gc_depth: 50,
            history_retention_rounds: 3_000,
            max_round_lookahead: 1_000,
            sync_retry_delay_ms: 10_000,
            sync_retry_nodes: 3,
            max_client_inflight_bytes: 2 << 20,
            max_intake_bytes: 2 << 20,
            batch_resend_window_ms: 2_000,
        }
    }
}

impl NetworkParameters {
    /// First retry delay.
    pub fn retry_min_delay(&self) -> Duration {
        Duration::from_millis(self.retry_min_delay_ms)
    }
    /// Largest retry delay.
    pub fn retry_max_delay(&self) -> Duration {
        Duration::from_millis(self.retry_max_delay_ms)
    }
}

impl Parameters {
    /// Check ranges: every limit positive, frames within the codec's hard limit, a
    /// batch (plus one transaction) fits in a frame, delays consistent.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidParameters(m.to_string()));
        let n = &self.network;
        let m = &self.mempool;
        if n.max_frame_size == 0 || n.max_frame_size > crate::codec::HARD_LIMIT {
            return bad("network.max_frame_size must be in 1..=64 MiB");
        }
        if n.peer_queue_capacity == 0
            || n.peer_queue_bytes == 0
            || n.max_inflight_reliable == 0
            || n.inbound_queue_capacity == 0
            || n.inbound_peer_bytes == 0
        {
            return bad("network queue capacities must be at least 1");
        }
        if n.retry_min_delay_ms == 0 || n.retry_max_delay_ms < n.retry_min_delay_ms {
            return bad("network.retry_min_delay_ms must be >= 1 and <= retry_max_delay_ms");
        }
        if n.keep_alive_ms == 0 || n.idle_timeout_ms <= n.keep_alive_ms {
            return bad("network.idle_timeout_ms must exceed keep_alive_ms > 0");
        }
        if n.silent_redial_ms != 0 && n.silent_redial_ms <= n.keep_alive_ms {
            return bad("network.silent_redial_ms must be 0 or exceed keep_alive_ms");
        }
        if n.ack_eliciting_threshold == 0 || n.ack_eliciting_threshold > 1_000 {
            return bad("network.ack_eliciting_threshold must be in 1..=1000");
        }
        if (n.max_udp_payload != 0 && n.max_udp_payload < 1_200) || n.max_udp_payload > 65_527 {
            return bad("network.max_udp_payload must be 0 or in 1200..=65527");
        }
        if m.batch_size == 0 || m.max_transaction_size == 0 || m.header_size == 0 {
            return bad("mempool sizes must be at least 1");
        }
        if m.batch_size
            .saturating_add(m.max_transaction_size)
            .saturating_add(4096)
            > n.max_frame_size
        {
            return bad(
                "mempool.batch_size + max_transaction_size must fit in network.max_frame_size",
            );
        }
        if m.max_header_batches == 0 || m.gc_depth == 0 || m.max_round_lookahead == 0 {
            return bad(
                "mempool.max_header_batches, gc_depth and max_round_lookahead must be at least 1",
            );
        }
        if m.sync_retry_nodes == 0 || m.sync_retry_delay_ms == 0 {
            return bad("mempool.sync_retry_nodes and sync_retry_delay_ms must be at least 1");
        }
        if m.max_intake_bytes < m.max_transaction_size {
            return bad("mempool.max_intake_bytes must be at least max_transaction_size");
        }
        if m.max_header_delay_ms == 0 || m.max_batch_delay_ms == 0 {
            return bad("mempool delays must be at least 1 ms");
        }
        Ok(())
    }

    /// Parse and validate TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let params: Parameters = toml::from_str(text).map_err(|e| Error::Parse {
            path: "parameters".into(),
            message: e.message().to_string(),
        })?;
        params.validate()?;
        Ok(params)
    }

    /// TOML text of these parameters (every field written, with its value).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::Parse {
            path: "parameters".into(),
            message: e.to_string(),
        })
    }

    /// Load and validate a parameters file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::committee::read_file(path)?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::Parse { message, .. } => Error::Parse {
                path: path.into(),
                message,
            },
            other => other,
        })
    }

    /// Write a parameters file.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::committee::write_file(path, &self.to_toml()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip() {
        let p = Parameters::default();
        p.validate().unwrap();
        assert_eq!(Parameters::from_toml(&p.to_toml().unwrap()).unwrap(), p);
        assert_eq!(p.mempool.batch_size, 500_000);
        assert_eq!(p.mempool.gc_depth, 50);
    }

    #[test]
    fn partial_files_unknown_fields_and_ranges() {
        let p = Parameters::from_toml("signature_scheme = \"bls\"\n[mempool]\ngc_depth = 10\n")
            .unwrap();
        assert_eq!(p.signature_scheme, SignatureScheme::Bls);
        assert_eq!(p.mempool.gc_depth, 10);
        assert_eq!(p.mempool.batch_size, 500_000);
        assert!(matches!(
            Parameters::from_toml("[mempool]\ngc_dept = 10\n"),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            Parameters::from_toml("[mempool]\nbatch_size = 100000000\n"),
            Err(Error::InvalidParameters(_))
        ));
        // Protocol tables are carried as they are (the consensus crate checks them).
        let p =
            Parameters::from_toml("[consensus.hotstuff]\ncommit_rule = \"two-chain\"\n").unwrap();
        assert_eq!(
            p.consensus["hotstuff"].get("commit_rule"),
            Some(&toml::Value::String("two-chain".into()))
        );
        assert_eq!(Parameters::from_toml(&p.to_toml().unwrap()).unwrap(), p);
    }

    #[test]
    fn a_fixed_datagram_size_is_zero_or_one_a_quic_path_can_carry() {
        for ok in [0, 1_200, 8_952, 65_527] {
            let toml = format!("[network]\nmax_udp_payload = {ok}\n");
            assert_eq!(
                Parameters::from_toml(&toml)
                    .unwrap()
                    .network
                    .max_udp_payload,
                ok
            );
        }
        for bad in [1, 1_199, 65_528] {
            let toml = format!("[network]\nmax_udp_payload = {bad}\n");
            assert!(matches!(
                Parameters::from_toml(&toml),
                Err(Error::InvalidParameters(_))
            ));
        }
        // Past u16: a parse error, not a wrapped value.
        assert!(matches!(
            Parameters::from_toml("[network]\nmax_udp_payload = 70000\n"),
            Err(Error::Parse { .. })
        ));
    }
}
