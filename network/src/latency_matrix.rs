//! WAN latency from a measured matrix: regions, the round-trip time between every two
//! of them, and where each node sits. The simulation (the harness's scenarios) and the
//! emulation on real sockets ([`crate::wan_emulation`]) read the same files.
//!
//! The file is CSV: `#` lines are comments; the first row is `region` followed by the
//! region names; each further row is a region name followed by its round-trip times in
//! milliseconds to every region, in the header's order (the diagonal is the round trip
//! between two nodes of one region). The one-way latency of a link is half the mean of
//! the two directions' round trips (a simulated link has one latency both ways).

use std::collections::BTreeMap;
use std::path::Path;

/// Largest round trip accepted, in milliseconds (a minute: far beyond any real path).
const MAX_RTT_MS: f64 = 60_000.0;
/// Most regions in one file.
const MAX_REGIONS: usize = 256;

/// Round-trip times between regions.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LatencyMatrix {
    /// Region names, in the file's order.
    pub regions: Vec<String>,
    /// `rtt_ms[i][j]`: the round trip from region `i` to region `j`, in milliseconds.
    pub rtt_ms: Vec<Vec<f64>>,
}

/// Why a matrix file could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("latency matrix, line {line}: {reason}")]
pub struct MatrixError {
    /// The line (1-based; 0: the file as a whole).
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl LatencyMatrix {
    /// Parse a matrix file's text.
    pub fn parse(text: &str) -> Result<Self, MatrixError> {
        let bad = |line: usize, reason: &str| MatrixError {
            line,
            reason: reason.into(),
        };
        let mut rows = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let (header_line, header) = rows.next().ok_or_else(|| bad(0, "no header row"))?;
        let mut cells = header.split(',').map(str::trim);
        if cells.next() != Some("region") {
            return Err(bad(header_line, "the header must start with `region`"));
        }
        let regions: Vec<String> = cells.map(String::from).collect();
        if regions.is_empty() || regions.len() > MAX_REGIONS {
            return Err(bad(header_line, "between 1 and 256 regions"));
        }
        let mut seen = std::collections::BTreeSet::new();
        if regions
            .iter()
            .any(|r| r.is_empty() || !seen.insert(r.as_str()))
        {
            return Err(bad(
                header_line,
                "region names must be distinct and not empty",
            ));
        }
        let mut by_region: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for (line, row) in rows {
            let mut cells = row.split(',').map(str::trim);
            let name = cells.next().unwrap_or_default();
            let index = regions
                .iter()
                .position(|r| r == name)
                .ok_or_else(|| bad(line, &format!("unknown region `{name}`")))?;
            let values: Vec<f64> = cells
                .map(|c| {
                    c.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite() && (0.0..=MAX_RTT_MS).contains(v))
                        .ok_or_else(|| {
                            bad(line, &format!("`{c}` is not a round trip in 0..=60000 ms"))
                        })
                })
                .collect::<Result<_, _>>()?;
            if values.len() != regions.len() {
                return Err(bad(
                    line,
                    &format!("{} values for {} regions", values.len(), regions.len()),
                ));
            }
            if by_region.insert(index, values).is_some() {
                return Err(bad(line, &format!("region `{name}` has two rows")));
            }
        }
        if by_region.len() != regions.len() {
            return Err(bad(0, "every region needs its row"));
        }
        Ok(LatencyMatrix {
            regions,
            rtt_ms: by_region.into_values().collect(),
        })
    }

    /// Read and parse a matrix file.
    pub fn load(path: &Path) -> Result<Self, MatrixError> {
        let text = std::fs::read_to_string(path).map_err(|e| MatrixError {
            line: 0,
            reason: format!("{}: {e}", path.display()),
        })?;
        Self::parse(&text)
    }

    /// The index of a region by name.
    pub fn region(&self, name: &str) -> Option<usize> {
        self.regions.iter().position(|r| r == name)
    }

    /// The one-way latency between regions `a` and `b`, in milliseconds: half the mean
    /// of the two directions' round trips.
    pub fn one_way_ms(&self, a: usize, b: usize) -> f64 {
        (self.rtt_ms[a][b] + self.rtt_ms[b][a]) / 4.0
    }

    /// The region of each of `nodes` nodes: `explicit` (names, one per node) if given,
    /// else round robin over the file's regions.
    pub fn place(&self, nodes: usize, explicit: Option<&[String]>) -> Result<Vec<usize>, String> {
        match explicit {
            None => Ok((0..nodes).map(|i| i % self.regions.len()).collect()),
            Some(names) if names.len() != nodes => Err(format!(
                "regions names {} nodes, the committee has {nodes}",
                names.len()
            )),
            Some(names) => names
                .iter()
                .map(|n| self.region(n).ok_or(format!("unknown region `{n}`")))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "# two regions\nregion, a, b\na, 1, 100\nb, 120, 2\n";

    #[test]
    fn a_matrix_gives_half_the_mean_round_trip_and_places_nodes() {
        let m = LatencyMatrix::parse(SMALL).unwrap();
        assert_eq!(m.regions, vec!["a", "b"]);
        assert_eq!(m.one_way_ms(0, 1), 55.0);
        assert_eq!(m.one_way_ms(1, 1), 1.0);
        assert_eq!(m.place(5, None).unwrap(), vec![0, 1, 0, 1, 0]);
        let names = vec!["b".to_string(), "b".to_string()];
        assert_eq!(m.place(2, Some(&names)).unwrap(), vec![1, 1]);
        assert!(m.place(3, Some(&names)).is_err());
        assert!(m.place(1, Some(&["c".to_string()])).is_err());
    }

    #[test]
    fn a_bad_matrix_is_refused_with_its_line() {
        for (text, line) in [
            ("", 0),
            ("regions,a\na,1\n", 1),
            ("region,a,a\na,1,1\n", 1),
            ("region,a,b\na,1,2\n", 0),
            ("region,a,b\na,1,2\nb,1\n", 3),
            ("region,a,b\na,1,2\nc,1,2\n", 3),
            ("region,a,b\na,1,2\nb,1,NaN\n", 3),
            ("region,a,b\na,1,2\nb,1,-4\n", 3),
            ("region,a,b\na,1,2\nb,1,1e9\n", 3),
            ("region,a,b\na,1,2\na,1,2\n", 3),
        ] {
            assert_eq!(
                LatencyMatrix::parse(text).unwrap_err().line,
                line,
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_shipped_matrix_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../harness/matrices/aws-2017.csv");
        let m = LatencyMatrix::load(&path).unwrap();
        assert_eq!(m.regions.len(), 10);
        assert!(m.rtt_ms.iter().flatten().all(|v| *v > 0.0));
    }
}
