//! An append-only segment log for the batches table.
//!
//! Batches are most of what a node writes (every batch of every worker, hundreds of
//! kilobytes each) and are written once, read a few times and deleted by garbage
//! collection. A B-tree (redb) copies each of them into its pages, grows its file while
//! they are kept for the history retention, and makes every later durable commit of
//! the small safety state flush them too: measured at 50,000 tx/s, keeping batches for
//! the default retention in redb halved the throughput of `bftlab local` and pushed its
//! latency to seconds. Here a batch is appended to the current segment file with one
//! (vectored) `write`, read with one positioned read, and a segment file is deleted
//! once every value in it has been deleted.
//!
//! Guarantees:
//! - A value whose write returned is visible to every later read, and survives a crash
//!   of the process (it is in the kernel); it survives a crash of the machine once its
//!   segment was synced: at once for [`Segments::put_durable`], when the segment is
//!   sealed (every [`SEGMENT_BYTES`]) otherwise.
//! - Every record carries a checksum of its key and value (CRC-32; records written
//!   before 2026-12-06 carry BLAKE3 and are still read). A record that fails it, or
//!   a torn tail after a crash, reads as absent (the mempool fetches a missing batch
//!   from its peers); recovery stops at the first bad record of a segment.
//! - A deletion is not written to disk: after a restart, a deleted value whose segment
//!   still held live values is present again (the mempool's GC deletes it again, as it
//!   is below the GC round). Deleting is only for data that may come back.
//! - Memory: an index entry per live value (its key, segment and offset), nothing of
//!   the values.

use super::StoreError;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, IoSlice, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A segment is sealed (synced in the background, and a new one started) once it holds
/// this many bytes.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// The start of every record written now: its checksum is CRC-32.
const MAGIC: [u8; 4] = *b"BFTC";
/// The start of a record written by an earlier version, whose checksum is BLAKE3.
/// Every batch is checksummed when written and again whenever it is read, and BLAKE3
/// was a tenth of the CPU of `bftlab local` at its peak; a CRC detects what the
/// checksum is for (a torn or corrupted record) at several times the speed. A batch
/// read back is not hashed again against its digest, so the CRC is what guards it on
/// disk: a random corruption passes it with a chance of about 2^-32 (2^-64 before).
const MAGIC_BLAKE3: [u8; 4] = *b"BFTS";
/// Magic, key length (u16), value length (u32), checksum (8 bytes).
const HEADER: usize = 4 + 2 + 4 + 8;
/// The largest value accepted (a batch is at most a few MiB).
const MAX_VALUE: u64 = 1 << 30;

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{}: {e}", path.display()))
}

/// Which checksum a record carries (told by its magic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sum {
    Crc32,
    Blake3,
}

/// The checksum of a record whose value is `value`'s parts joined.
fn checksum(kind: Sum, key: &[u8], value: &[&[u8]]) -> [u8; 8] {
    let key_len = (key.len() as u64).to_le_bytes();
    let mut out = [0u8; 8];
    match kind {
        Sum::Crc32 => {
            let mut h = crc32fast::Hasher::new();
            h.update(&key_len);
            h.update(key);
            value.iter().for_each(|part| h.update(part));
            out[..4].copy_from_slice(&h.finalize().to_le_bytes());
        }
        Sum::Blake3 => {
            let mut h = blake3::Hasher::new();
            h.update(&key_len);
            h.update(key);
            value.iter().for_each(|part| {
                h.update(part);
            });
            out.copy_from_slice(&h.finalize().as_bytes()[..8]);
        }
    }
    out
}

/// Write every byte of `slices` (a record's header and its value's parts) with as few
/// system calls as the kernel allows.
fn write_all_vectored(mut file: &File, mut slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "the record was not written whole",
                ))
            }
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Where a value is.
#[derive(Clone, Copy, Debug)]
struct Location {
    segment: u64,
    /// Offset of the value (after the record's header and key).
    offset: u64,
    len: u32,
    sum: [u8; 8],
    kind: Sum,
}

struct Segment {
    file: Arc<File>,
    path: PathBuf,
    live: usize,
}

struct Inner {
    index: HashMap<Vec<u8>, Location>,
    segments: BTreeMap<u64, Segment>,
    /// The segment appended to, and its length.
    active: u64,
    active_len: u64,
}

/// The segment log of one table (see the module documentation).
pub struct Segments {
    dir: PathBuf,
    inner: Mutex<Inner>,
}

/// The file name suffix of a segment written now. Segments of CRC-32 records have
/// their own suffix so that an earlier version, which reads only BLAKE3 records, skips
/// them instead of finding nothing live in them and deleting them.
const SUFFIX: &str = ".seg2";
/// The suffix of segments written by earlier versions (BLAKE3 records), still read.
const LEGACY_SUFFIX: &str = ".seg";

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}{SUFFIX}"))
}

impl Segments {
    /// Open (or create) the log in `dir`: index every intact record of the existing
    /// segments (headers and keys only), delete segments with nothing live, and start a
    /// new segment for writing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut ids = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| {
                n.strip_suffix(SUFFIX)
                    .or_else(|| n.strip_suffix(LEGACY_SUFFIX))
            }) else {
                continue;
            };
            if let Ok(id) = u64::from_str_radix(stem, 16) {
                ids.push((id, entry.path()));
            }
        }
        // Ids only grow, so one id never names two files; if it did, the first is kept.
        ids.sort_unstable();
        ids.dedup_by_key(|(id, _)| *id);
        let mut inner = Inner {
            index: HashMap::new(),
            segments: BTreeMap::new(),
            active: 0,
            active_len: 0,
        };
        let next = ids.last().map_or(0, |(id, _)| id + 1);
        for (id, path) in ids {
            let file = File::open(&path).map_err(|e| io(&path, e))?;
            let records = read_records(&file, id).map_err(|e| io(&path, e))?;
            inner.segments.insert(
                id,
                Segment {
                    file: Arc::new(file),
                    path,
                    live: 0,
                },
            );
            for (key, location) in records {
                inner.insert(key, location);
            }
        }
        let dead: Vec<u64> = inner
            .segments
            .iter()
            .filter(|(_, s)| s.live == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            if let Some(s) = inner.segments.remove(&id) {
                fs::remove_file(&s.path).map_err(|e| io(&s.path, e))?;
            }
        }
        let log = Segments {
            dir: dir.to_path_buf(),
            inner: Mutex::new(inner),
        };
        {
            let mut inner = log.lock()?;
            log.start_segment(&mut inner, next)?;
        }
        Ok(log)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("segment log lock poisoned".into()))
    }

    fn start_segment(&self, inner: &mut Inner, id: u64) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        inner.segments.insert(
            id,
            Segment {
                file: Arc::new(file),
                path,
                live: 0,
            },
        );
        inner.active = id;
        inner.active_len = 0;
        Ok(())
    }

    /// Append `value` under `key` (replacing an older value); synced to disk before
    /// returning when `durable`.
    pub fn put(&self, key: &[u8], value: &[u8], durable: bool) -> Result<(), StoreError> {
        self.put_parts(key, &[value], durable)
    }

    /// [`Segments::put`] of the value `parts` joined, written with one vectored write
    /// instead of being joined first.
    pub fn put_parts(&self, key: &[u8], parts: &[&[u8]], durable: bool) -> Result<(), StoreError> {
        let value_len: usize = parts.iter().map(|p| p.len()).sum();
        if key.len() > u16::MAX as usize || value_len as u64 > MAX_VALUE {
            return Err(StoreError::Backend(format!(
                "segment record too large: key {} B, value {value_len} B",
                key.len(),
            )));
        }
        let mut inner = self.lock()?;
        let record = (HEADER + key.len() + value_len) as u64;
        if inner.active_len > 0 && inner.active_len + record > SEGMENT_BYTES {
            self.seal(&mut inner)?;
        }
        let sum = checksum(Sum::Crc32, key, parts);
        let mut head = Vec::with_capacity(HEADER + key.len());
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&(key.len() as u16).to_le_bytes());
        head.extend_from_slice(&(value_len as u32).to_le_bytes());
        head.extend_from_slice(&sum);
        head.extend_from_slice(key);
        let (id, start) = (inner.active, inner.active_len);
        let segment = inner
            .segments
            .get(&id)
            .ok_or_else(|| StoreError::Backend("active segment missing".into()))?;
        let file = segment.file.clone();
        let path = segment.path.clone();
        let mut slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&head))
            .chain(parts.iter().map(|p| IoSlice::new(p)))
            .collect();
        let written = write_all_vectored(&file, &mut slices).and_then(|()| {
            if durable {
                file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Cut a partial record off, so the next one starts where this one did; if
            // even that fails, go on in a new segment, so that no later record of this
            // one is indexed at an offset it is not at.
            if file.set_len(start).is_err() {
                let _ = self.seal(&mut inner);
            }
            return Err(io(&path, e));
        }
        inner.active_len = start + record;
        inner.insert(
            key.to_vec(),
            Location {
                segment: id,
                offset: start + head.len() as u64,
                len: value_len as u32,
                sum,
                kind: Sum::Crc32,
            },
        );
        Ok(())
    }

    /// Start a new segment; the sealed one is synced on a background thread.
    fn seal(&self, inner: &mut Inner) -> Result<(), StoreError> {
        let sealed = inner.active;
        if let Some(s) = inner.segments.get(&sealed) {
            let file = s.file.clone();
            let _ = std::thread::Builder::new()
                .name("segment-sync".into())
                .spawn(move || {
                    let _ = file.sync_data();
                });
        }
        let emptied = inner.segments.get(&sealed).is_some_and(|s| s.live == 0);
        self.start_segment(inner, sealed + 1)?;
        if emptied {
            inner.drop_segment(sealed);
        }
        Ok(())
    }

    /// Remove `key` (no error if absent); a segment with nothing live left is deleted,
    /// unless it is the one appended to.
    pub fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if let Some(location) = inner.index.remove(key) {
            inner.release(location.segment);
        }
        Ok(())
    }

    /// Sync the segment appended to (what [`Segments::put`] wrote without `durable`).
    pub fn sync(&self) -> Result<(), StoreError> {
        let (file, path) = {
            let inner = self.lock()?;
            match inner.segments.get(&inner.active) {
                Some(s) => (s.file.clone(), s.path.clone()),
                None => return Ok(()),
            }
        };
        file.sync_data().map_err(|e| io(&path, e))
    }

    /// The value under `key`; `None` if absent, or if its record fails its checksum.
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let Some((location, file)) = self.find(key)? else {
            return Ok(None);
        };
        let mut value = vec![0u8; location.len as usize];
        if file.read_exact_at(&mut value, location.offset).is_err()
            || checksum(location.kind, key, &[&value]) != location.sum
        {
            tracing::warn!(dir = %self.dir.display(), "unreadable segment record: treated as absent");
            return Ok(None);
        }
        Ok(Some(Bytes::from(value)))
    }

    /// The first `n` bytes of the value under `key` (fewer if it is shorter), not
    /// checked against the checksum (recovery reads the round tag of every batch).
    pub fn get_head(&self, key: &[u8], n: usize) -> Result<Option<Bytes>, StoreError> {
        let Some((location, file)) = self.find(key)? else {
            return Ok(None);
        };
        let mut head = vec![0u8; n.min(location.len as usize)];
        if file.read_exact_at(&mut head, location.offset).is_err() {
            return Ok(None);
        }
        Ok(Some(Bytes::from(head)))
    }

    fn find(&self, key: &[u8]) -> Result<Option<(Location, Arc<File>)>, StoreError> {
        let inner = self.lock()?;
        let Some(location) = inner.index.get(key).copied() else {
            return Ok(None);
        };
        Ok(inner
            .segments
            .get(&location.segment)
            .map(|s| (location, s.file.clone())))
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.lock()?.index.contains_key(key))
    }

    /// Every key, in key order.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut keys: Vec<Vec<u8>> = self.lock()?.index.keys().cloned().collect();
        keys.sort_unstable();
        Ok(keys)
    }

    /// Number of values.
    pub fn count(&self) -> Result<usize, StoreError> {
        Ok(self.lock()?.index.len())
    }

    /// Number of segment files (the active one included).
    pub fn segment_count(&self) -> Result<usize, StoreError> {
        Ok(self.lock()?.segments.len())
    }
}

impl Inner {
    fn insert(&mut self, key: Vec<u8>, location: Location) {
        if let Some(s) = self.segments.get_mut(&location.segment) {
            s.live += 1;
        }
        if let Some(old) = self.index.insert(key, location) {
            self.release(old.segment);
        }
    }

    fn release(&mut self, segment: u64) {
        let Some(s) = self.segments.get_mut(&segment) else {
            return;
        };
        s.live = s.live.saturating_sub(1);
        if s.live == 0 && segment != self.active {
            self.drop_segment(segment);
        }
    }

    fn drop_segment(&mut self, segment: u64) {
        if let Some(s) = self.segments.remove(&segment) {
            // Readers holding the file keep reading it; the name goes now.
            if let Err(e) = fs::remove_file(&s.path) {
                tracing::warn!(path = %s.path.display(), error = %e, "cannot delete an emptied segment");
            }
        }
    }
}

/// The intact records of a segment file, in order: each key with its location. Stops
/// at the end, or at the first record that is torn or not a record.
fn read_records(file: &File, id: u64) -> std::io::Result<Vec<(Vec<u8>, Location)>> {
    let size = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(64 << 10, file);
    reader.seek(SeekFrom::Start(0))?;
    let mut records = Vec::new();
    let mut at = 0u64;
    loop {
        if at + HEADER as u64 > size {
            break;
        }
        let mut head = [0u8; HEADER];
        reader.read_exact(&mut head)?;
        let kind = match [head[0], head[1], head[2], head[3]] {
            MAGIC => Sum::Crc32,
            MAGIC_BLAKE3 => Sum::Blake3,
            _ => break,
        };
        let key_len = u16::from_le_bytes([head[4], head[5]]) as u64;
        let value_len = u32::from_le_bytes([head[6], head[7], head[8], head[9]]) as u64;
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&head[10..18]);
        let offset = at + HEADER as u64 + key_len;
        if value_len > MAX_VALUE || offset + value_len > size {
            break;
        }
        let mut key = vec![0u8; key_len as usize];
        reader.read_exact(&mut key)?;
        reader.seek_relative(value_len as i64)?;
        records.push((
            key,
            Location {
                segment: id,
                offset,
                len: value_len as u32,
                sum,
                kind,
            },
        ));
        at = offset + value_len;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(n: usize, fill: u8) -> Vec<u8> {
        vec![fill; n]
    }

    #[test]
    fn values_survive_reopen_and_replacements_win() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Segments::open(dir.path()).unwrap();
            log.put(b"a", &value(10, 1), false).unwrap();
            log.put(b"b", &value(20, 2), true).unwrap();
            log.put(b"a", &value(5, 3), false).unwrap();
            assert_eq!(log.get(b"a").unwrap().unwrap().as_ref(), &value(5, 3)[..]);
            assert_eq!(log.get_head(b"b", 4).unwrap().unwrap().as_ref(), &[2; 4]);
            assert!(log.get(b"c").unwrap().is_none());
        }
        let log = Segments::open(dir.path()).unwrap();
        assert_eq!(log.get(b"a").unwrap().unwrap().as_ref(), &value(5, 3)[..]);
        assert_eq!(log.get(b"b").unwrap().unwrap().as_ref(), &value(20, 2)[..]);
        assert_eq!(log.count().unwrap(), 2);
        assert_eq!(log.keys().unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn a_segment_whose_values_are_all_deleted_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let log = Segments::open(dir.path()).unwrap();
        let big = (SEGMENT_BYTES / 3) as usize;
        for k in 0..6u8 {
            log.put(&[k], &value(big, k), false).unwrap();
        }
        // Two values per segment: segments 0, 1 sealed, 2 active.
        assert_eq!(log.segment_count().unwrap(), 3);
        log.delete(&[0]).unwrap();
        assert_eq!(log.segment_count().unwrap(), 3);
        log.delete(&[1]).unwrap();
        assert_eq!(log.segment_count().unwrap(), 2);
        // The active segment stays even when empty.
        log.delete(&[4]).unwrap();
        log.delete(&[5]).unwrap();
        assert_eq!(log.segment_count().unwrap(), 2);
        assert!(log.get(&[1]).unwrap().is_none());
        assert_eq!(log.get(&[2]).unwrap().unwrap().len(), big);
        let files = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2);
    }

    #[test]
    fn a_torn_tail_or_a_corrupted_value_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Segments::open(dir.path()).unwrap();
            log.put(b"whole", &value(100, 7), false).unwrap();
            log.put(b"torn", &value(100, 8), false).unwrap();
        }
        let path = segment_path(dir.path(), 0);
        let size = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(size - 10)
            .unwrap();
        {
            let log = Segments::open(dir.path()).unwrap();
            assert!(log.contains(b"whole").unwrap());
            assert!(!log.contains(b"torn").unwrap());
            log.put(b"later", &value(50, 9), false).unwrap();
        }
        // Flip a byte inside the value of "whole": it reads as absent, "later" is fine.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_at(&[0xff], (HEADER + 5 + 50) as u64).unwrap();
        let log = Segments::open(dir.path()).unwrap();
        assert!(log.get(b"whole").unwrap().is_none());
        assert_eq!(
            log.get(b"later").unwrap().unwrap().as_ref(),
            &value(50, 9)[..]
        );
    }

    /// A segment written by an earlier version (BLAKE3 checksums) is still read, and
    /// checked by its own checksum.
    #[test]
    fn records_of_the_blake3_format_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = Vec::new();
        for (key, fill) in [(&b"old"[..], 4u8), (&b"bad"[..], 5u8)] {
            let value = value(30, fill);
            let mut sum = checksum(Sum::Blake3, key, &[&value]);
            if key == b"bad" {
                sum[0] ^= 1;
            }
            file.extend_from_slice(&MAGIC_BLAKE3);
            file.extend_from_slice(&(key.len() as u16).to_le_bytes());
            file.extend_from_slice(&(value.len() as u32).to_le_bytes());
            file.extend_from_slice(&sum);
            file.extend_from_slice(key);
            file.extend_from_slice(&value);
        }
        fs::write(dir.path().join(format!("{:016x}{LEGACY_SUFFIX}", 0)), &file).unwrap();
        let log = Segments::open(dir.path()).unwrap();
        assert_eq!(
            log.get(b"old").unwrap().unwrap().as_ref(),
            &value(30, 4)[..]
        );
        assert!(log.get(b"bad").unwrap().is_none());
        log.put(b"new", &value(30, 6), false).unwrap();
        drop(log);
        // New records go to a segment with the new suffix, which earlier versions skip.
        assert!(dir
            .path()
            .join(format!("{:016x}{LEGACY_SUFFIX}", 0))
            .exists());
        assert!(segment_path(dir.path(), 1).exists());
        let log = Segments::open(dir.path()).unwrap();
        assert_eq!(
            log.get(b"old").unwrap().unwrap().as_ref(),
            &value(30, 4)[..]
        );
        assert_eq!(
            log.get(b"new").unwrap().unwrap().as_ref(),
            &value(30, 6)[..]
        );
    }

    #[test]
    fn garbage_files_in_the_directory_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        fs::write(segment_path(dir.path(), 3), b"not a record at all").unwrap();
        let log = Segments::open(dir.path()).unwrap();
        assert_eq!(log.count().unwrap(), 0);
        log.put(b"k", b"v", true).unwrap();
        assert_eq!(log.get(b"k").unwrap().unwrap().as_ref(), b"v");
    }
}
