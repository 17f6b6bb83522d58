//! A node's committed sequence on disk (`bftlab node --history FILE`), and the safety
//! judgement over several nodes' sequences that `bftlab remote` makes of what it
//! collected.
//!
//! One line per delivered position, appended (a restarted node goes on in the same
//! file): `POSITION CERTIFICATE CHAIN`, hex digests, where `CHAIN` is the chain hash of
//! the sequence up to and including that position (equal on two nodes exactly when
//! their sequences agree up to there); a checkpoint's gap is `gap FROM TO CHAIN`, the
//! chain hash before `TO`. Two honest nodes agree when every position both list has
//! the same chain hash.

use anyhow::{Context, Result};
use consensus::Delivered;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Longest history file read: about 7 million positions (some 20 hours at 100
/// certificates per second).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Appends a node's delivered positions to its history file.
pub struct SequenceWriter(std::fs::File);

impl SequenceWriter {
    /// Open `path` for appending (created if missing). A last line without its
    /// newline (the node was killed while writing it) is cut off first, so what this
    /// run appends starts on a line of its own.
    pub fn open(path: &Path) -> Result<Self> {
        let cannot = || format!("cannot open {}", path.display());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(cannot)?;
        let len = file.metadata().with_context(cannot)?.len();
        if len > 0 {
            use std::io::{Read, Seek, SeekFrom};
            // The last complete line ends within the last line's length; read back
            // at most 4 KiB (a line is under 150 bytes).
            let tail = len.min(4096);
            file.seek(SeekFrom::Start(len - tail))
                .with_context(cannot)?;
            let mut buf = Vec::new();
            file.read_to_end(&mut buf).with_context(cannot)?;
            if buf.last() != Some(&b'\n') {
                let keep = buf
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(len - tail, |p| len - tail + p as u64 + 1);
                file.set_len(keep).with_context(cannot)?;
            }
        }
        Ok(SequenceWriter(file))
    }

    /// Append one delivered position (written through at once: a crash loses nothing
    /// the line had).
    pub fn record(&mut self, d: &Delivered) -> Result<()> {
        let line = match d.skipped_until {
            Some(to) => format!("gap {} {to} {}\n", d.position, d.chain.to_hex()),
            None => format!(
                "{} {} {}\n",
                d.position,
                d.certificate.to_hex(),
                d.chain.to_hex()
            ),
        };
        self.0.write_all(line.as_bytes()).context("history file")
    }
}

/// A node's sequence as read back: the chain hash at every position it listed (a gap
/// gives the chain hash just before its end).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    /// Position to chain hash (hex).
    pub chains: BTreeMap<u64, String>,
    /// Lines that list a position twice with different chain hashes (the node's own
    /// sequence changed under it).
    pub rewritten: Vec<u64>,
}

impl Sequence {
    /// Read a history file; a malformed line is an error naming it.
    pub fn load(path: &Path) -> Result<Self> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        if size > MAX_FILE_BYTES {
            anyhow::bail!("{} is larger than {MAX_FILE_BYTES} bytes", path.display());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| path.display().to_string())
    }

    /// Parse a history file's text. A last line without its newline (a node killed in
    /// the middle of writing it) is ignored.
    pub fn parse(text: &str) -> Result<Self> {
        let mut seq = Sequence::default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for (i, line) in complete.lines().enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let number = |s: &str| {
                s.parse::<u64>()
                    .with_context(|| format!("line {}: bad position {s:?}", i + 1))
            };
            let (position, chain) = match fields.as_slice() {
                [p, _, chain] => (number(p)?, *chain),
                ["gap", _, to, chain] => (number(to)?.saturating_sub(1), *chain),
                _ => anyhow::bail!("line {}: not a history line", i + 1),
            };
            if chain.len() != 64 || !chain.bytes().all(|b| b.is_ascii_hexdigit()) {
                anyhow::bail!("line {}: bad chain hash", i + 1);
            }
            match seq.chains.insert(position, chain.to_string()) {
                Some(old) if old != chain => seq.rewritten.push(position),
                _ => {}
            }
        }
        Ok(seq)
    }

    /// The highest position listed and its chain hash: a digest of the whole sequence.
    pub fn head(&self) -> Option<(u64, &str)> {
        self.chains.last_key_value().map(|(p, c)| (*p, c.as_str()))
    }
}

/// Safety over honest nodes' sequences: every disagreement, as text (empty: they
/// agree). `sequences` pairs a node id with its sequence.
pub fn disagreements(sequences: &[(usize, Sequence)]) -> Vec<String> {
    let mut found = Vec::new();
    for (node, seq) in sequences {
        for p in &seq.rewritten {
            found.push(format!(
                "node {node} listed position {p} twice with different chains"
            ));
        }
    }
    for (i, (a, sa)) in sequences.iter().enumerate() {
        for (b, sb) in &sequences[i + 1..] {
            if let Some((p, _)) = sa
                .chains
                .iter()
                .find(|(p, c)| sb.chains.get(p).is_some_and(|other| other != *c))
            {
                found.push(format!("nodes {a} and {b} disagree at position {p}"));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: u8) -> String {
        format!("{b:02x}").repeat(32)
    }

    #[test]
    fn agreeing_prefixes_pass_and_a_fork_is_named() {
        let c = hex(0xcc);
        let a = Sequence::parse(&format!("0 {c} {}\n1 {c} {}\n", hex(1), hex(2))).unwrap();
        let b = Sequence::parse(&format!("0 {c} {}\n", hex(1))).unwrap();
        let gap = Sequence::parse(&format!("gap 0 2 {}\n", hex(2))).unwrap();
        assert_eq!(a.head(), Some((1, hex(2).as_str())));
        assert!(disagreements(&[(0, a), (1, b), (2, gap)]).is_empty());
        let a = Sequence::parse(&format!("0 {c} {}\n1 {c} {}\n", hex(1), hex(2))).unwrap();
        let fork = Sequence::parse(&format!("0 {c} {}\n1 {c} {}\n", hex(1), hex(3))).unwrap();
        assert_eq!(
            disagreements(&[(0, a), (3, fork)]),
            vec!["nodes 0 and 3 disagree at position 1".to_string()]
        );
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_garbage_is_refused() {
        let c = hex(0xcc);
        let torn = Sequence::parse(&format!("0 {c} {}\n1 {c} 12", hex(1))).unwrap();
        assert_eq!(torn.chains.len(), 1);
        assert!(Sequence::parse("0 x y z w\n").is_err());
        assert!(Sequence::parse(&format!("x {c} {}\n", hex(1))).is_err());
        assert!(Sequence::parse(&format!("0 {c} nothex\n")).is_err());
        let twice = Sequence::parse(&format!("0 {c} {}\n0 {c} {}\n", hex(1), hex(2))).unwrap();
        assert_eq!(disagreements(&[(0, twice)]).len(), 1);
    }

    #[test]
    fn reopening_cuts_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.txt");
        let c = hex(0xcc);
        std::fs::write(&path, format!("0 {c} {}\n1 {c} 12", hex(1))).unwrap();
        drop(SequenceWriter::open(&path).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("0 {c} {}\n", hex(1))
        );
        std::fs::write(&path, "torn").unwrap();
        drop(SequenceWriter::open(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
