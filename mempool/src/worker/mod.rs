//! Workers: transaction intake, batch sealing and dissemination, batch storage and
//! synchronization. Worker `i` of every node forms one shard.

mod batch_maker;
mod handler;
mod unsolicited;

pub(crate) use batch_maker::BatchMaker;
pub(crate) use handler::WorkerHandler;

use primitives::{Digest, NodeId, Round, WorkerId};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a worker tells its primary.
#[derive(Debug)]
pub(crate) enum WorkerEvent {
    /// One of this worker's batches is stored by a quorum: put it in a header.
    OwnBatch(Digest, WorkerId),
    /// A batch is now in the local store (received or synchronized).
    Stored(Digest),
}

/// What a primary asks of its worker.
#[derive(Debug)]
pub(crate) enum WorkerCommand {
    /// Fetch these batches, first from `target`.
    Synchronize(Vec<Digest>, NodeId),
    /// Execution waits for these batches of a committed certificate: fetch them first
    /// from `target`; those asked for before are asked of other peers at once (not at
    /// the next retry tick: the author may be withholding them, and the peers that
    /// hold them collect them once the committee's commits move past their round).
    /// Each with the round of the certificate that carries it: the batch is stored
    /// (and the fetch kept) under at least that round, so a node far behind, whose own
    /// round is still low, does not collect it again at its next GC.
    Refetch(Vec<(Digest, Round)>, NodeId),
    /// A certificate names these batches: peers' pushes of them are no longer
    /// unsolicited.
    Named(Vec<Digest>),
    /// Delete batches stored before the first round (the batch horizon), except those
    /// listed (batches of certificates still in the DAG, and batches waiting for one of
    /// our headers); and pushed batches nothing named, stored before the second (the
    /// GC round).
    Cleanup(Round, Round, std::sync::Arc<crate::dag::CarriedBatches>),
}

/// The store key of a batch: worker index then digest.
pub(crate) fn batch_key(worker: WorkerId, digest: &Digest) -> Vec<u8> {
    let mut key = worker.0.to_be_bytes().to_vec();
    key.extend_from_slice(digest.as_bytes());
    key
}

/// State shared between a worker's tasks and its primary.
#[derive(Default)]
pub(crate) struct WorkerShared {
    /// The primary's current round, or the highest round of a certificate it received
    /// if that is higher; a stored batch is tagged with it for garbage collection.
    pub(crate) round: AtomicU64,
    /// Stored batches by tag round, for garbage collection.
    pub(crate) index: Mutex<BTreeMap<Round, Vec<Digest>>>,
}

impl WorkerShared {
    pub(crate) fn tag(&self) -> Round {
        Round(self.round.load(Ordering::Relaxed))
    }

    pub(crate) fn remember(&self, tag: Round, digest: Digest) {
        if let Ok(mut index) = self.index.lock() {
            index.entry(tag).or_default().push(digest);
        }
    }

    /// Remove and return every digest tagged below `gc_round`.
    pub(crate) fn take_below(&self, gc_round: Round) -> Vec<Digest> {
        let Ok(mut index) = self.index.lock() else {
            return vec![];
        };
        let keep = index.split_off(&gc_round);
        std::mem::replace(&mut *index, keep)
            .into_values()
            .flatten()
            .collect()
    }
}

/// The write of a stored batch value: round tag, then the batch bytes, as parts that
/// the store joins (the batch log without copying the batch).
pub(crate) fn store_batch(key: Vec<u8>, tag: Round, batch: bytes::Bytes) -> crate::store::StoreOp {
    let tag = bytes::Bytes::copy_from_slice(&tag.0.to_le_bytes());
    crate::store::StoreOp::PutJoined(crate::store::Table::Batches, key, vec![tag, batch])
}

/// Split a stored batch value into its tag and batch bytes.
pub(crate) fn split_stored(value: &bytes::Bytes) -> Option<(Round, bytes::Bytes)> {
    let tag: [u8; 8] = value.get(..8)?.try_into().ok()?;
    Some((Round(u64::from_le_bytes(tag)), value.slice(8..)))
}

/// Rebuild the garbage-collection index of `worker` from the store after a restart.
pub(crate) fn recover_index(
    store: &dyn crate::store::Store,
    worker: WorkerId,
    shared: &Arc<WorkerShared>,
) -> Result<(), crate::store::StoreError> {
    let prefix = worker.0.to_be_bytes();
    for (key, value) in store.scan_heads(crate::store::Table::Batches, 8)? {
        if key.len() == 34 && key[..2] == prefix {
            if let (Some((tag, _)), Ok(digest)) =
                (split_stored(&value), <[u8; 32]>::try_from(&key[2..]))
            {
                shared.remember(tag, Digest(digest));
            }
        }
    }
    Ok(())
}
