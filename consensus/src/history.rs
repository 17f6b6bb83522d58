//! The committed history on disk: every certificate the linearizer delivered, by
//! position, kept for a retention.
//!
//! It serves three purposes:
//! - **Crash-safe execution.** An entry is written before the linearizer state that is
//!   past it, so the executor, restarted, finds every position it had not executed yet
//!   (at least once by position, never a hole) and the linearizer resumes exactly where
//!   the sequence ended, even when the core's persisted state is older.
//! - **State transfer.** Peers that fell behind the garbage-collection horizon fetch
//!   entries from here (see [`crate::transfer`]); each entry carries the chain hash of
//!   the sequence up to it, so a peer can vouch for a whole prefix with one digest.
//! - **Retention.** An entry is pruned, oldest first, once the committed round its
//!   delivery reached is `keep_rounds` below the committed round (the driver passes the
//!   linearizer's batch memory, `max(2 gc_depth, gc_depth + history_retention_rounds)`,
//!   so a restarted linearizer can rebuild what it remembers from what is kept), never
//!   at or above the executor's position or the last durably written linearizer
//!   position. The mempool keeps their batches at least as long.
//! - **Checkpoints.** The chain hash before the floor is kept (pruning records it), so a
//!   node can vouch for the first position it keeps; and a node that skipped positions
//!   beyond every peer's retention records the gap explicitly ([`Gap`]): its executor
//!   delivers it as one entry that names the skipped positions and the chain hash that
//!   ends them, never as a silent hole.

use crate::linearizer::Committed;
use mempool::store::{StoreOp, Table};
use mempool::{Store, StoreError};
use primitives::{codec, Round};
use std::sync::Arc;

/// Meta key: the lowest position still kept (8 bytes, little-endian).
pub const FLOOR_KEY: &[u8] = b"history_floor";
/// Meta key: the chain hash of every position below the floor (32 bytes; absent when
/// unknown, e.g. below a floor that was never moved).
pub const FLOOR_CHAIN_KEY: &[u8] = b"history_floor_chain";
/// Meta key prefix of gap records (the prefix, then the gap's first position, 8 bytes
/// big-endian).
const GAP_PREFIX: &[u8] = b"history_gap/";
/// Meta key: the position the executor delivers next (8 bytes, little-endian).
pub const EXECUTED_KEY: &[u8] = b"executed_position";
/// Most entries pruned per call, so pruning never stalls the driver.
const PRUNE_STEP: usize = 256;

/// The store key of a position: big-endian, so keys sort by position.
pub fn key(position: u64) -> Vec<u8> {
    position.to_be_bytes().to_vec()
}

/// Read a little-endian u64 kept under `key` in the meta table (0 when absent or
/// malformed).
pub fn read_position(store: &dyn Store, key: &[u8]) -> Result<u64, StoreError> {
    Ok(store
        .read(Table::Meta, key)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0))
}

/// The store operation that records `position` under `key` in the meta table.
pub fn position_op(key: &[u8], position: u64) -> StoreOp {
    StoreOp::Put(
        Table::Meta,
        key.to_vec(),
        position.to_le_bytes().to_vec().into(),
    )
}

/// One entry of the history, read back: `Ok(None)` when absent or undecodable (the
/// store is this node's own, so an undecodable entry is a bug or disk corruption, and
/// it is treated as missing rather than trusted), `Err` when the store failed.
pub fn read(store: &dyn Store, position: u64) -> Result<Option<Committed>, StoreError> {
    let Some(bytes) = store.read(Table::History, &key(position))? else {
        return Ok(None);
    };
    let entry = codec::decode::<Committed>(&bytes, usize::MAX)
        .ok()
        .filter(|e| e.position == position);
    if entry.is_none() {
        tracing::error!(position, "undecodable entry in the committed history");
    }
    Ok(entry)
}

/// Positions `[from, to)` that this node skipped: beyond every peer's history retention
/// when it caught up, it installed a checkpoint instead, the chain hash `chain` of the
/// committed sequence before `to`, vouched for by members holding f+1 weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gap {
    /// The first position skipped.
    pub from: u64,
    /// The first position after the gap.
    pub to: u64,
    /// The chain hash of the sequence before `to`.
    pub chain: primitives::Digest,
}

fn gap_key(from: u64) -> Vec<u8> {
    let mut k = GAP_PREFIX.to_vec();
    k.extend_from_slice(&from.to_be_bytes());
    k
}

/// The gap that starts at `position`, if this node skipped from there.
pub fn read_gap(store: &dyn Store, position: u64) -> Result<Option<Gap>, StoreError> {
    Ok(store
        .read(Table::Meta, &gap_key(position))?
        .and_then(|b| codec::decode::<Gap>(&b, 64).ok())
        .filter(|g| g.from == position && g.to > g.from))
}

/// The committed history of one node.
pub struct History {
    store: Arc<dyn Store>,
    floor: u64,
    /// The chain hash before `floor`, when known.
    floor_chain: Option<primitives::Digest>,
    /// Rounds kept below the committed round (see the module documentation).
    keep_rounds: u64,
}

impl History {
    /// The history in `store`, keeping entries `keep_rounds` rounds below the committed
    /// round.
    pub fn open(store: Arc<dyn Store>, keep_rounds: u64) -> Result<Self, StoreError> {
        let floor = read_position(store.as_ref(), FLOOR_KEY)?;
        let floor_chain = if floor == 0 {
            Some(primitives::Digest::default())
        } else {
            store
                .read(Table::Meta, FLOOR_CHAIN_KEY)?
                .and_then(|b| <[u8; 32]>::try_from(b.as_ref()).ok())
                .map(primitives::Digest)
        };
        Ok(History {
            store,
            floor,
            floor_chain,
            keep_rounds,
        })
    }

    /// The lowest position kept.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// The chain hash of the sequence below the floor, when known.
    pub fn floor_chain(&self) -> Option<primitives::Digest> {
        self.floor_chain
    }

    /// Record that positions `[gap.from, gap.to)` were skipped (see [`Gap`]): the gap
    /// record, and the floor moved to `gap.to` with `gap.chain` below it (peers are no
    /// longer told this node keeps anything before). Entries below `gap.from` and
    /// `below` (positions the executor has executed) are deleted; those the executor has
    /// still to execute stay until it has (they are below the floor, so never served).
    /// Not waiting for stable storage: the next durable write (the linearizer state past
    /// the gap) makes it durable first.
    pub fn skip(&mut self, gap: Gap, below: u64) -> Result<(), StoreError> {
        let bytes = codec::encode(&gap).map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut ops = vec![
            StoreOp::Put(Table::Meta, gap_key(gap.from), bytes.into()),
            position_op(FLOOR_KEY, gap.to),
            StoreOp::Put(
                Table::Meta,
                FLOOR_CHAIN_KEY.to_vec(),
                gap.chain.as_bytes().to_vec().into(),
            ),
        ];
        ops.extend(
            (self.floor..gap.from.min(below)).map(|p| StoreOp::Delete(Table::History, key(p))),
        );
        self.store.write_relaxed(ops)?;
        self.floor = gap.to;
        self.floor_chain = Some(gap.chain);
        Ok(())
    }

    /// The store operations that write `entries`: the driver writes them in the same
    /// transaction as the linearizer state that is past them, or on their own (not
    /// waiting for stable storage) before that state is written.
    pub fn ops(entries: &[Committed]) -> Result<Vec<StoreOp>, StoreError> {
        let mut ops = Vec::with_capacity(entries.len());
        for e in entries {
            let bytes = codec::encode(e).map_err(|e| StoreError::Backend(e.to_string()))?;
            ops.push(StoreOp::Put(Table::History, key(e.position), bytes.into()));
        }
        Ok(ops)
    }

    /// Write entries on their own (not waiting for stable storage: the next durable
    /// write of the store makes them durable first).
    pub fn append(&self, entries: &[Committed]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.store.write_relaxed(Self::ops(entries)?)
    }

    /// The entry at `position`, if kept (a store failure reads as absent: callers that
    /// must tell the two apart use [`read`]).
    pub fn get(&self, position: u64) -> Option<Committed> {
        if position < self.floor {
            return None;
        }
        read(self.store.as_ref(), position).ok().flatten()
    }

    /// Consecutive entries from `from`: at most `max_entries`, and no more than
    /// `max_bytes` of encoded entries (but at least one, if `from` is kept).
    pub fn range(&self, from: u64, max_entries: usize, max_bytes: usize) -> Vec<Committed> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut position = from;
        while out.len() < max_entries {
            if position < self.floor {
                break;
            }
            let Ok(Some(raw)) = self.store.read(Table::History, &key(position)) else {
                break;
            };
            if !out.is_empty() && bytes + raw.len() > max_bytes {
                break;
            }
            let Some(entry) = codec::decode::<Committed>(&raw, usize::MAX)
                .ok()
                .filter(|e| e.position == position)
            else {
                break;
            };
            bytes += raw.len();
            out.push(entry);
            position += 1;
        }
        out
    }

    /// Prune the oldest entries whose delivery reached a committed round more than the
    /// retention below `committed_round`, never at or above `below` (positions the
    /// executor has not executed, or that a restart would not find in the durable
    /// linearizer state). Returns how many were pruned.
    pub fn prune(&mut self, committed_round: Round, below: u64) -> Result<usize, StoreError> {
        let mut ops = Vec::new();
        let mut floor = self.floor;
        let mut floor_chain = self.floor_chain;
        while floor < below && ops.len() < PRUNE_STEP {
            // Missing or undecodable below the executed position: nothing to keep (and
            // the chain hash below the floor is then unknown).
            match read(self.store.as_ref(), floor)? {
                Some(e) => {
                    let reached = e.committed_round.max(e.anchor_round);
                    if reached.0 + self.keep_rounds > committed_round.0 {
                        break;
                    }
                    floor_chain = Some(e.chain);
                }
                None => floor_chain = None,
            }
            ops.push(StoreOp::Delete(Table::History, key(floor)));
            floor += 1;
        }
        if ops.is_empty() {
            return Ok(0);
        }
        let pruned = ops.len();
        ops.push(position_op(FLOOR_KEY, floor));
        ops.push(match floor_chain {
            Some(chain) => StoreOp::Put(
                Table::Meta,
                FLOOR_CHAIN_KEY.to_vec(),
                chain.as_bytes().to_vec().into(),
            ),
            None => StoreOp::Delete(Table::Meta, FLOOR_CHAIN_KEY.to_vec()),
        });
        self.store.write_relaxed(ops)?;
        self.floor = floor;
        self.floor_chain = floor_chain;
        Ok(pruned)
    }
}

/// The latest delivered entries, kept in memory so that the executor takes them without
/// reading them back from the store; bounded (the oldest go first), so an executor that
/// falls behind reads the rest from the history.
#[derive(Default)]
pub struct Recent {
    entries: std::sync::Mutex<std::collections::VecDeque<Committed>>,
}

/// Most entries [`Recent`] keeps.
pub const RECENT: usize = 4_096;

impl Recent {
    /// Keep `entries` (delivered in order).
    pub fn push(&self, entries: &[Committed]) {
        if let Ok(mut recent) = self.entries.lock() {
            recent.extend(entries.iter().cloned());
            while recent.len() > RECENT {
                recent.pop_front();
            }
        }
    }

    /// A copy of the entry at `position`, if kept (nothing is dropped).
    pub fn get(&self, position: u64) -> Option<Committed> {
        let recent = self.entries.lock().ok()?;
        let first = recent.front()?.position;
        let index = usize::try_from(position.checked_sub(first)?).ok()?;
        recent
            .get(index)
            .filter(|e| e.position == position)
            .cloned()
    }

    /// The entry at `position`, if still kept (dropping everything before it).
    pub fn take(&self, position: u64) -> Option<Committed> {
        let mut recent = self.entries.lock().ok()?;
        while recent.front().is_some_and(|e| e.position < position) {
            recent.pop_front();
        }
        match recent.front() {
            Some(e) if e.position == position => recent.pop_front(),
            _ => None,
        }
    }
}
