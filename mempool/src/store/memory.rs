//! An in-memory store. Clones share the same tables, so a simulation harness can keep
//! one outside a node and hand it to the node again after a simulated crash.

use super::{Store, StoreError, StoreOp, Table};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

type Tables = BTreeMap<Table, BTreeMap<Vec<u8>, Bytes>>;

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
        Ok(self
            .lock()?
            .get(&table)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    fn count(&self, table: Table) -> Result<usize, StoreError> {
        Ok(self.lock()?.get(&table).map(|t| t.len()).unwrap_or(0))
    }
}
