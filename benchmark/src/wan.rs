//! The WAN emulation flags shared by `bftlab node`, `bftlab local` and `bftlab remote`:
//! a latency matrix (the simulation's file format), the region of every member, jitter
//! and loss. The delay is applied by the sending node in the application
//! ([`network::wan_emulation`]); records say so.

use anyhow::{Context, Result};
use clap::Args;
use network::latency_matrix::LatencyMatrix;
use network::wan_emulation::{self, WanEmulation};
use primitives::{Committee, NodeId};
use serde_json::json;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

/// WAN emulation in the application.
#[derive(Args, Debug, Clone, Default)]
pub struct WanArgs {
    /// Emulate a WAN from this latency matrix (CSV of round trips between regions, as
    /// in scenarios): each datagram between two members leaves its sender the one-way
    /// latency of their regions later. Emulated in the application, for kernels
    /// without netem.
    #[arg(long, value_name = "FILE")]
    pub latency_matrix: Option<PathBuf>,
    /// The region of every member in id order, comma-separated (default: round robin
    /// over the matrix's regions).
    #[arg(long, value_delimiter = ',', requires = "latency_matrix")]
    pub regions: Option<Vec<String>>,
    /// Up to this many milliseconds more on each datagram (uniform).
    #[arg(long, default_value_t = 0, requires = "latency_matrix")]
    pub jitter_ms: u64,
    /// Probability that a datagram between members is lost.
    #[arg(long, default_value_t = 0.0, requires = "latency_matrix")]
    pub wan_loss: f64,
}

impl WanArgs {
    /// The matrix, if one is named.
    pub fn matrix(&self) -> Result<Option<LatencyMatrix>> {
        self.latency_matrix
            .as_ref()
            .map(|p| LatencyMatrix::load(p).map_err(anyhow::Error::from))
            .transpose()
    }

    /// Every member's region, by name, for a committee of `nodes` (checked against the
    /// matrix). Empty without a matrix.
    pub fn regions(&self, nodes: usize) -> Result<Vec<String>> {
        let Some(matrix) = self.matrix()? else {
            return Ok(Vec::new());
        };
        let placed = matrix
            .place(nodes, self.regions.as_deref())
            .map_err(anyhow::Error::msg)
            .context("--regions")?;
        Ok(placed
            .into_iter()
            .map(|i| matrix.regions[i].clone())
            .collect())
    }

    /// The flags that pass these settings on to a node process, with the regions
    /// spelled out.
    pub fn node_flags(&self, nodes: usize) -> Result<Vec<String>> {
        match &self.latency_matrix {
            None => Ok(Vec::new()),
            Some(path) => self.node_flags_naming(nodes, &path.display().to_string()),
        }
    }

    /// [`WanArgs::node_flags`] for a node that finds the matrix at `matrix` (a copy
    /// of it on another host); nothing without a matrix.
    pub fn node_flags_naming(&self, nodes: usize, matrix: &str) -> Result<Vec<String>> {
        if self.latency_matrix.is_none() {
            return Ok(Vec::new());
        }
        Ok(vec![
            "--latency-matrix".into(),
            matrix.into(),
            "--regions".into(),
            self.regions(nodes)?.join(","),
            "--jitter-ms".into(),
            self.jitter_ms.to_string(),
            "--wan-loss".into(),
            self.wan_loss.to_string(),
        ])
    }

    /// What a result record says of the network's latency.
    pub fn record(&self, nodes: usize) -> Result<serde_json::Value> {
        Ok(match self.matrix()? {
            None => json!(null),
            Some(matrix) => json!({
                "emulated": "in the application (a delay line under QUIC in each sending node)",
                "latency_matrix": self.latency_matrix,
                "matrix": matrix,
                "regions": self.regions(nodes)?,
                "jitter_ms": self.jitter_ms,
                "loss": self.wan_loss,
            }),
        })
    }

    /// Install the emulation for node `id` of `committee` in this process (before its
    /// network starts). Nothing without a matrix.
    pub fn install(&self, committee: &Committee, id: NodeId) -> Result<Option<Arc<WanEmulation>>> {
        let Some(matrix) = self.matrix()? else {
            return Ok(None);
        };
        let regions = self.regions(committee.size())?;
        let own = regions
            .get(id.0 as usize)
            .with_context(|| format!("no region for node {id}"))?;
        let mut members = Vec::new();
        for (member, region) in committee.members().iter().zip(&regions) {
            let addresses =
                std::iter::once(&member.primary).chain(member.workers.iter().map(|w| &w.worker));
            for address in addresses {
                members.push((resolve(address)?, region.clone()));
            }
        }
        let emulation = WanEmulation::new(&matrix, own, &members, self.jitter_ms, self.wan_loss)?;
        Ok(Some(wan_emulation::install(emulation)?))
    }
}

fn resolve(address: &str) -> Result<SocketAddr> {
    address
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {address}"))?
        .next()
        .with_context(|| format!("{address} resolves to nothing"))
}
