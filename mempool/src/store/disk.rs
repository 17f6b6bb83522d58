//! The on-disk store: redb for the small tables, a segment log for batches.
//!
//! redb was chosen because it is pure Rust (no C++ toolchain or cmake, unlike RocksDB),
//! actively maintained with a stable 1.0+ file format, and gives ACID transactions with
//! fsync on commit, which is exactly the guarantee [`Store::write`] promises. One
//! [`Store::write`] is one redb write transaction.
//!
//! The batches table lives in an append-only segment log beside the redb file
//! ([`super::segments`]): batches are most of the bytes a node writes, and in redb they
//! grew its file and made every durable commit of the safety state flush them. A write
//! may therefore not mix batches with other tables (refused; no caller does). For
//! batches, a relaxed write survives a crash of the process at once and a crash of the
//! machine once its segment is sealed; a deletion may be undone by a restart (see
//! [`super::segments`]).

use super::segments::Segments;
use super::{Store, StoreError, StoreOp, Table};
use bytes::Bytes;
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;

const CERTIFICATES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("certificates");
const VOTES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("votes");
const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");
const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");

/// The redb table of `table`; `None` for batches (in the segment log).
fn definition(table: Table) -> Option<TableDefinition<'static, &'static [u8], &'static [u8]>> {
    match table {
        Table::Batches => None,
        Table::Certificates => Some(CERTIFICATES),
        Table::Votes => Some(VOTES),
        Table::Meta => Some(META),
        Table::History => Some(HISTORY),
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A redb database file, and the batches' segment log in the directory beside it
/// (`<file>.batches/`).
pub struct DiskStore {
    db: Database,
    batches: Segments,
}

impl DiskStore {
    /// Open (or create) the database at `path` and the segment log beside it, and make
    /// sure every table exists.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(backend)?;
        for table in Table::ALL.into_iter().filter_map(definition) {
            txn.open_table(table).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        let batches = Segments::open(&path.with_extension("batches"))?;
        Ok(DiskStore { db, batches })
    }

    fn commit(&self, ops: Vec<StoreOp>, durability: Durability) -> Result<(), StoreError> {
        let table = |op: &StoreOp| match op {
            StoreOp::Put(t, ..) | StoreOp::PutJoined(t, ..) | StoreOp::Delete(t, ..) => *t,
        };
        let batches = ops.iter().filter(|op| table(op) == Table::Batches).count();
        if batches == ops.len() && batches > 0 {
            let durable = matches!(durability, Durability::Immediate);
            for op in &ops {
                match op {
                    StoreOp::Put(_, key, value) => self.batches.put(key, value, false)?,
                    StoreOp::PutJoined(_, key, parts) => {
                        let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_ref()).collect();
                        self.batches.put_parts(key, &parts, false)?
                    }
                    StoreOp::Delete(_, key) => self.batches.delete(key)?,
                }
            }
            if durable {
                self.batches.sync()?;
            }
            return Ok(());
        }
        if batches > 0 {
            return Err(StoreError::Backend(
                "a write may not mix the batches table with other tables".into(),
            ));
        }
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(durability);
        for op in &ops {
            let Some(def) = definition(table(op)) else {
                continue;
            };
            let mut t = txn.open_table(def).map_err(backend)?;
            match op {
                StoreOp::Put(_, key, value) => {
                    t.insert(key.as_slice(), value.as_ref()).map_err(backend)?;
                }
                StoreOp::PutJoined(_, key, parts) => {
                    t.insert(key.as_slice(), super::joined(parts).as_ref())
                        .map_err(backend)?;
                }
                StoreOp::Delete(_, key) => {
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
        let Some(def) = definition(table) else {
            return self.batches.get(key);
        };
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(def).map_err(backend)?;
        Ok(t.get(key)
            .map_err(backend)?
            .map(|v| Bytes::copy_from_slice(v.value())))
    }

    fn contains(&self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        if table == Table::Batches {
            return self.batches.contains(key);
        }
        Ok(self.read(table, key)?.is_some())
    }

    fn scan(&self, table: Table) -> Result<Vec<(Vec<u8>, Bytes)>, StoreError> {
        let Some(def) = definition(table) else {
            let mut out = Vec::new();
            for key in self.batches.keys()? {
                if let Some(value) = self.batches.get(&key)? {
                    out.push((key, value));
                }
            }
            return Ok(out);
        };
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(def).map_err(backend)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(backend)? {
            let (k, v) = entry.map_err(backend)?;
            out.push((k.value().to_vec(), Bytes::copy_from_slice(v.value())));
        }
        Ok(out)
    }

    fn scan_heads(&self, table: Table, n: usize) -> Result<Vec<(Vec<u8>, Bytes)>, StoreError> {
        if table != Table::Batches {
            return Ok(super::heads(self.scan(table)?, n));
        }
        let mut out = Vec::new();
        for key in self.batches.keys()? {
            if let Some(head) = self.batches.get_head(&key, n)? {
                out.push((key, head));
            }
        }
        Ok(out)
    }

    fn count(&self, table: Table) -> Result<usize, StoreError> {
        let Some(def) = definition(table) else {
            return self.batches.count();
        };
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(def).map_err(backend)?;
        Ok(t.len().map_err(backend)? as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value written in parts reads back joined, in the batch log and in redb, from
    /// this store, after a reopen, and from the memory store alike.
    #[test]
    fn a_value_written_in_parts_reads_back_joined() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let parts = || {
            vec![
                Bytes::from_static(b"tag:"),
                Bytes::from(vec![5u8; 100_000]),
                Bytes::new(),
                Bytes::from_static(b"end"),
            ]
        };
        let mut want = b"tag:".to_vec();
        want.extend(vec![5u8; 100_000]);
        want.extend(b"end");
        let memory = crate::store::MemoryStore::new();
        {
            let s = DiskStore::open(&path).unwrap();
            for store in [&s as &dyn Store, &memory] {
                store
                    .write_relaxed(vec![StoreOp::PutJoined(Table::Batches, vec![1], parts())])
                    .unwrap();
                store
                    .write(vec![StoreOp::PutJoined(Table::Meta, vec![2], parts())])
                    .unwrap();
                assert_eq!(store.read(Table::Batches, &[1]).unwrap().unwrap(), want);
                assert_eq!(store.read(Table::Meta, &[2]).unwrap().unwrap(), want);
            }
        }
        let s = DiskStore::open(&path).unwrap();
        assert_eq!(s.read(Table::Batches, &[1]).unwrap().unwrap(), want);
        assert_eq!(s.read(Table::Meta, &[2]).unwrap().unwrap(), want);
    }

    #[test]
    fn survives_reopen_and_refuses_batches_mixed_with_other_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        {
            let s = DiskStore::open(&path).unwrap();
            s.write(vec![StoreOp::Put(
                Table::Votes,
                vec![0, 1],
                Bytes::from_static(b"v"),
            )])
            .unwrap();
            s.write_relaxed(vec![
                StoreOp::Put(Table::Batches, vec![8], Bytes::from_static(b"a")),
                StoreOp::Put(Table::Batches, vec![9], Bytes::from_static(b"b")),
            ])
            .unwrap();
            // Batches and another table in one write: refused, nothing applied.
            assert!(s
                .write(vec![
                    StoreOp::Put(Table::Votes, vec![0, 2], Bytes::from_static(b"w")),
                    StoreOp::Put(Table::Batches, vec![7], Bytes::from_static(b"c")),
                ])
                .is_err());
            s.write(vec![StoreOp::Delete(Table::Batches, vec![9])])
                .unwrap();
        }
        let s = DiskStore::open(&path).unwrap();
        assert_eq!(
            s.read(Table::Votes, &[0, 1]).unwrap().unwrap(),
            Bytes::from_static(b"v")
        );
        // A batch deletion is not persisted: [9] shares its segment with the live [8],
        // so it is back after the restart (the mempool's GC deletes it again).
        assert!(s.contains(Table::Batches, &[9]).unwrap());
        assert!(!s.contains(Table::Batches, &[7]).unwrap());
        assert_eq!(
            s.read(Table::Batches, &[8]).unwrap().unwrap(),
            Bytes::from_static(b"a")
        );
        assert_eq!(
            s.scan_heads(Table::Batches, 1).unwrap(),
            vec![
                (vec![8], Bytes::from_static(b"a")),
                (vec![9], Bytes::from_static(b"b"))
            ]
        );
        assert!(s.read(Table::Votes, &[0, 2]).unwrap().is_none());
        assert_eq!(s.count(Table::Votes).unwrap(), 1);
        assert_eq!(s.scan(Table::Votes).unwrap().len(), 1);
    }
}
