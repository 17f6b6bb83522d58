//! The traffic a Byzantine member floods its peers with, beside its node: bytes no
//! decoder accepts, requests for every batch it knows, requests for more history than
//! anyone holds, and batches it never proposes. Each flood is a task on the Byzantine node's host that sends
//! through its own authenticated transport, so the frames arrive from a committee
//! member, as they would from a compromised one.

use bytes::Bytes;
use consensus::transfer::{TransferMessage, CHANNEL_TRANSFER};
use mempool::{MempoolHandle, MempoolMessage, CHANNEL_MEMPOOL};
use primitives::{codec, Digest, Round, WorkerId};
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// Most digests the batch-request flood names per request (the workers' own limit).
const REQUEST_DIGESTS: usize = 1_000;

/// A flood skips a peer while this many bytes already wait in the flooder's queue to it.
/// Without it the flood filled that queue (64 MiB) and the flooder's own consensus
/// messages were dropped behind it: the member fell silent, and what the honest nodes
/// then held was what a silent member costs (`byzantine-silent`), not what the flood
/// makes them keep. A flooder that keeps proposing and voting is the harder test.
const FLOOD_BACKLOG: usize = 1 << 20;

/// Whether the flood has room toward `peer` (see [`FLOOD_BACKLOG`]).
fn room(sender: &network::Sender, peer: primitives::NodeId) -> bool {
    sender.queued_bytes(peer) < FLOOD_BACKLOG
}

/// Send random undecodable frames to every peer, 200 per second each, forever.
pub(crate) async fn garbage(sender: network::Sender, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6a72_6261_6765);
    let peers = sender.others().to_vec();
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        for peer in peers.iter().filter(|p| room(&sender, **p)) {
            let len = rng.gen_range(1..512);
            let mut bytes = vec![0u8; len];
            rng.fill(&mut bytes[..]);
            // Channel bytes of the mempool and consensus too, so decoders see it.
            bytes[0] = rng.gen_range(0..4);
            let _ = sender.send(*peer, Bytes::from(bytes));
        }
    }
}

fn mempool_frame(message: &MempoolMessage) -> Option<Bytes> {
    let mut out = vec![CHANNEL_MEMPOOL];
    codec::encode_append(message, &mut out).ok()?;
    Some(out.into())
}

/// Every 10 ms, ask every peer's worker 0 for up to 1,000 batches: each a batch of the
/// node's DAG (newest rounds first; each is held by every honest worker, so every
/// request asks for hundreds of kilobytes each), each named twice, and unknown digests
/// to fill the request. An honest worker must serve this within a byte budget and its
/// queue for the flooder within `peer_queue_bytes`.
pub(crate) async fn batch_requests(sender: network::Sender, mempool: MempoolHandle, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6261_7463_6866);
    let peers = sender.others().to_vec();
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let known: Vec<Digest> = mempool.with_dag(|dag| {
            let mut out = Vec::new();
            let mut round = dag.highest_round();
            while out.len() < REQUEST_DIGESTS / 2 && round > dag.gc_round() {
                for c in dag.round(round).into_iter().flat_map(|r| r.values()) {
                    out.extend(
                        c.header
                            .payload
                            .iter()
                            .filter(|(_, w)| *w == WorkerId(0))
                            .map(|(d, _)| *d),
                    );
                }
                round = Round(round.0 - 1);
            }
            out.truncate(REQUEST_DIGESTS / 2);
            out
        });
        let mut digests: Vec<Digest> = known.iter().chain(known.iter()).copied().collect();
        while digests.len() < REQUEST_DIGESTS {
            digests.push(Digest(rng.gen()));
        }
        let Some(frame) = mempool_frame(&MempoolMessage::BatchRequest {
            worker: WorkerId(0),
            digests,
        }) else {
            continue;
        };
        for peer in peers.iter().filter(|p| room(&sender, **p)) {
            let _ = sender.send(*peer, frame.clone());
        }
    }
}

/// Every 10 ms, ask every peer for more than anyone holds: every certificate of rounds
/// 0 to `u64::MAX`, 1,000 unknown certificates, and the committed history from
/// position 0 (a state-transfer fetch, and a status probe). An honest node must answer
/// within its limits (a bounded reply, a rate limit) and stay live.
pub(crate) async fn sync_spam(sender: network::Sender, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7379_6e63_7370);
    let peers = sender.others().to_vec();
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let unknown: Vec<Digest> = (0..1_000).map(|_| Digest(rng.gen())).collect();
        let mut frames: Vec<Bytes> = [
            MempoolMessage::CertificateRangeRequest {
                from: Round(0),
                to: Round(u64::MAX),
            },
            MempoolMessage::CertificatesRequest(unknown),
        ]
        .iter()
        .filter_map(mempool_frame)
        .collect();
        for message in [
            TransferMessage::Fetch { from: 0 },
            TransferMessage::StatusRequest,
            TransferMessage::VouchRequest { position: 1 },
        ] {
            let mut out = vec![CHANNEL_TRANSFER];
            if codec::encode_append(&message, &mut out).is_ok() {
                frames.push(out.into());
            }
        }
        for peer in peers.iter().filter(|p| room(&sender, **p)) {
            for frame in &frames {
                let _ = sender.send(*peer, frame.clone());
            }
        }
    }
}

/// Every 10 ms, push a batch of 20 random 512-byte transactions to every peer's worker
/// 0, which no header of the flooder ever names. An honest worker must not store
/// without bound what it is pushed and nothing certifies.
pub(crate) async fn batches(sender: network::Sender, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6261_7463_6873);
    let peers = sender.others().to_vec();
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let transactions = (0..20)
            .map(|_| {
                let mut tx = vec![0u8; 512];
                rng.fill(&mut tx[..]);
                Bytes::from(tx)
            })
            .collect();
        let Ok(batch) = mempool::encode_batch(&mempool::Batch { transactions }) else {
            continue;
        };
        let Some(frame) = mempool_frame(&MempoolMessage::Batch {
            worker: WorkerId(0),
            batch: batch.into(),
        }) else {
            continue;
        };
        for peer in peers.iter().filter(|p| room(&sender, **p)) {
            let _ = sender.send(*peer, frame.clone());
        }
    }
}
