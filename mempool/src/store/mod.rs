//! Persistent state behind one trait, with an in-memory and an on-disk implementation.
//!
//! The mempool keeps four tables: batches (digest -> round tag + encoded batch),
//! certificates (digest -> certificate), votes (author -> last vote) and meta (the
//! node's own last header); consensus adds a fifth, its committed history (position ->
//! entry). A [`Store::write`] applies all its operations atomically and durably before returning: the primary relies on that to persist a vote or header
//! before sending it.

mod disk;
mod memory;
pub mod segments;

pub use disk::DiskStore;
pub use memory::MemoryStore;

use bytes::Bytes;

/// The tables of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Batch digest -> 8-byte little-endian round tag followed by the encoded batch.
    Batches,
    /// Certificate digest -> encoded certificate.
    Certificates,
    /// Header author id (2 bytes) -> encoded last vote (round, header digest).
    Votes,
    /// Named singletons (the node's last own header).
    Meta,
    /// Consensus's committed sequence: position (8-byte big-endian) -> encoded entry,
    /// kept for a retention so that lagging peers can fetch it.
    History,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 5] = [
        Table::Batches,
        Table::Certificates,
        Table::Votes,
        Table::Meta,
        Table::History,
    ];
}

/// One change to the store.
#[derive(Clone, Debug)]
pub enum StoreOp {
    /// Insert or replace.
    Put(Table, Vec<u8>, Bytes),
    /// Insert or replace with the parts joined, in order, as the value; a store may
    /// write them without joining them first (the batch log writes them with one
    /// vectored write, so a stored batch is not copied to prefix its round tag).
    PutJoined(Table, Vec<u8>, Vec<Bytes>),
    /// Remove (no error if absent).
    Delete(Table, Vec<u8>),
}

/// `parts` joined into one value.
fn joined(parts: &[Bytes]) -> Bytes {
    match parts {
        [one] => one.clone(),
        _ => parts.concat().into(),
    }
}

/// Each entry with its value cut to its first `n` bytes.
fn heads(entries: Vec<(Vec<u8>, Bytes)>, n: usize) -> Vec<(Vec<u8>, Bytes)> {
    entries
        .into_iter()
        .map(|(k, v)| {
            let head = v.slice(..n.min(v.len()));
            (k, head)
        })
        .collect()
}

/// A store failure. For a node this is fatal: it cannot promise not to equivocate
/// without durable state.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error("store: {0}")]
    Backend(String),
}

/// Durable key-value tables.
pub trait Store: Send + Sync + 'static {
    /// Apply `ops` atomically; when this returns Ok they survive a crash.
    fn write(&self, ops: Vec<StoreOp>) -> Result<(), StoreError>;
    /// Apply `ops` atomically, without waiting for them to reach stable storage: a crash
    /// may lose them (never partially), and a later [`Store::write`] makes them durable
    /// too. For data that can be fetched again from peers (batches, certificates) and
    /// for garbage collection.
    fn write_relaxed(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        self.write(ops)
    }

    /// Read one value.
    fn read(&self, table: Table, key: &[u8]) -> Result<Option<Bytes>, StoreError>;
    /// Whether a key is present.
    fn contains(&self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.read(table, key)?.is_some())
    }
    /// Every entry of a table, in key order (recovery and tests).
    fn scan(&self, table: Table) -> Result<Vec<(Vec<u8>, Bytes)>, StoreError>;
    /// Every key of a table, in key order, with the first `n` bytes of its value (fewer
    /// if shorter): recovery reads the round tags of the batches without their bytes.
    fn scan_heads(&self, table: Table, n: usize) -> Result<Vec<(Vec<u8>, Bytes)>, StoreError> {
        Ok(heads(self.scan(table)?, n))
    }
    /// Number of entries in a table.
    fn count(&self, table: Table) -> Result<usize, StoreError>;
}
