//! The on-disk store: redb.
//!
//! redb was chosen because it is pure Rust (no C++ toolchain or cmake, unlike RocksDB),
//! actively maintained with a stable 1.0+ file format, and gives ACID transactions with
//! fsync on commit, which is exactly the guarantee [`Store::write`] promises. One
//! [`Store::write`] is one redb write transaction.

use super::{Store, StoreError, StoreOp, Table};
use bytes::Bytes;
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;

const BATCHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("batches");
const CERTIFICATES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("certificates");
const VOTES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("votes");
const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");
const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");

fn definition(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    match table {
        Table::Batches => BATCHES,
        Table::Certificates => CERTIFICATES,
        Table::Votes => VOTES,
        Table::Meta => META,
        Table::History => HISTORY,
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A redb database file.
pub struct DiskStore {
    db: Database,
}

impl DiskStore {
    /// Open (or create) the database at `path` and make sure every table exists.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(backend)?;
        for table in Table::ALL {
            txn.open_table(definition(table)).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        Ok(DiskStore { db })
    }
}

impl DiskStore {
    fn commit(&self, ops: Vec<StoreOp>, durability: Durability) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(durability);

        for op in &ops {
            match op {
                StoreOp::Put(table, key, value) => {
                    let mut t = txn.open_table(definition(*table)).map_err(backend)?;
                    t.insert(key.as_slice(), value.as_ref()).map_err(backend)?;
                }
                StoreOp::Delete(table, key) => {
                    let mut t = txn.open_table(definition(*table)).map_err(backend)?;
                    t.remove(key.as_slice()).map_err(backend)?;
                }
            }
        }
        txn.commit().map_err(backend)
    }
}

impl Store for DiskStore {
    fn write(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        self.commit(ops, Durability::Immediate)
    }

    fn write_relaxed(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        self.commit(ops, Durability::None)
    }

    fn read(&self, table: Table, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(definition(table)).map_err(backend)?;
        Ok(t.get(key)
            .map_err(backend)?
            .map(|v| Bytes::copy_from_slice(v.value())))
    }

    fn scan(&self, table: Table) -> Result<Vec<(Vec<u8>, Bytes)>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(definition(table)).map_err(backend)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(backend)? {
            let (k, v) = entry.map_err(backend)?;
            out.push((k.value().to_vec(), Bytes::copy_from_slice(v.value())));
        }
        Ok(out)
    }

    fn count(&self, table: Table) -> Result<usize, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(definition(table)).map_err(backend)?;
        Ok(t.len().map_err(backend)? as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_applies_batches_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        {
            let s = DiskStore::open(&path).unwrap();
            s.write(vec![
                StoreOp::Put(Table::Votes, vec![0, 1], Bytes::from_static(b"v")),
                StoreOp::Put(Table::Batches, vec![9], Bytes::from_static(b"b")),
            ])
            .unwrap();
            s.write(vec![StoreOp::Delete(Table::Batches, vec![9])])
                .unwrap();
        }
        let s = DiskStore::open(&path).unwrap();
        assert_eq!(
            s.read(Table::Votes, &[0, 1]).unwrap().unwrap(),
            Bytes::from_static(b"v")
        );
        assert!(!s.contains(Table::Batches, &[9]).unwrap());
        assert_eq!(s.count(Table::Votes).unwrap(), 1);
        assert_eq!(s.scan(Table::Votes).unwrap().len(), 1);
    }
}
