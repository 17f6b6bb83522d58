//! An in-memory store. Clones share the same tables, so a simulation harness can keep
//! one outside a node and hand it to the node again after a simulated crash.

use super::{Store, StoreError, StoreOp, Table};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Hash maps, not ordered maps: reads and writes (every batch and certificate a node
/// checks or stores) are the hot path, scans (recovery) are rare and sort their output.
type Tables = BTreeMap<Table, HashMap<Vec<u8>, Bytes>>;

/// In-memory tables shared by all clones.
#[derive(Clone, Default)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError::Backend("memory store poisoned".into()))
    }
}

impl Store for MemoryStore {
    fn write(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        let mut tables = self.lock()?;
        for op in ops {
            match op {
                StoreOp::Put(table, key, value) => {
                    tables.entry(table).or_default().insert(key, value);
                }
                StoreOp::PutJoined(table, key, parts) => {
                    tables
                        .entry(table)
                        .or_default()
                        .insert(key, super::joined(&parts));
                }
                StoreOp::Delete(table, key) => {
                    if let Some(t) = tables.get_mut(&table) {
                        t.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn read(&self, table: Table, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        Ok(self.lock()?.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn scan(&self, table: Table) -> Result<Vec<(Vec<u8>, Bytes)>, StoreError> {
        let mut entries: Vec<(Vec<u8>, Bytes)> = self
            .lock()?
            .get(&table)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    fn count(&self, table: Table) -> Result<usize, StoreError> {
        Ok(self.lock()?.get(&table).map(|t| t.len()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_are_in_key_order_and_deletes_remove() {
        let s = MemoryStore::new();
        let put = |k: u8| StoreOp::Put(Table::Meta, vec![k], Bytes::from(vec![k, k]));
        s.write((0..200u8).rev().map(put).collect()).unwrap();
        s.write(vec![StoreOp::Delete(Table::Meta, vec![7])])
            .unwrap();
        let keys: Vec<u8> = s
            .scan(Table::Meta)
            .unwrap()
            .iter()
            .map(|(k, _)| k[0])
            .collect();
        assert_eq!(keys, (0..200u8).filter(|k| *k != 7).collect::<Vec<_>>());
        assert_eq!(s.count(Table::Meta).unwrap(), 199);
        assert_eq!(
            s.read(Table::Meta, &[9]).unwrap(),
            Some(Bytes::from(vec![9, 9]))
        );
        assert!(!s.contains(Table::Meta, &[7]).unwrap());
        assert!(s.scan(Table::Votes).unwrap().is_empty());
    }
}
