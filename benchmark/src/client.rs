//! `bftlab client`: submit transactions at a fixed rate to one node's worker.

use crate::tx;
use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Args;
use network::clients::TransactionClient;
use network::Environment;
use primitives::{Committee, NodeId};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Arguments of `bftlab client`.
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Committee file.
    #[arg(long)]
    pub committee: PathBuf,
    /// Which node to send to.
    #[arg(long, default_value_t = 0)]
    pub node: u16,
    /// Which of its workers.
    #[arg(long, default_value_t = 0)]
    pub worker: usize,
    /// Transactions per second.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// Transaction size in bytes (at least 25).
    #[arg(long, default_value_t = 512)]
    pub tx_size: usize,
    /// Seconds to send for.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// One transaction in this many carries its send time (for latency).
    #[arg(long, default_value_t = 100)]
    pub sample_every: u64,
    /// Client id, so that different clients' transactions differ.
    #[arg(long, default_value_t = 0)]
    pub id: u64,
    /// Datagram size (UDP payload bytes) to send, path MTU discovery off; 0 is QUIC's
    /// own (1,200 raised by discovery up to 1,452). For a path known to carry more,
    /// such as loopback (`bftlab local` passes its nodes' `network.max_udp_payload`).
    #[arg(long, default_value_t = 0)]
    pub max_udp_payload: u16,
    /// Where to write what the node said of the transactions (JSON: sent, accepted,
    /// refused) when the client stops.
    #[arg(long)]
    pub summary: Option<PathBuf>,
}

/// What a client sent and what its node said of it (`bftlab local` aggregates these).
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone, Copy)]
pub struct ClientSummary {
    /// Transactions sent.
    pub sent: u64,
    /// Accepted by the node.
    pub accepted: u64,
    /// Refused by the node's admission control (the committee was past its capacity).
    pub refused: u64,
    /// Asked for by the rate but not sent (the client fell behind its schedule: held
    /// back by the node's flow control, or by its own CPU).
    #[serde(default)]
    pub skipped: u64,
}

/// Run `bftlab client`.
pub fn run(args: ClientArgs) -> Result<()> {
    if args.tx_size < tx::MIN_SIZE {
        anyhow::bail!("--tx-size must be at least {}", tx::MIN_SIZE);
    }
    let committee = Committee::load(&args.committee)?;
    let member = committee
        .member(NodeId(args.node))
        .with_context(|| format!("no node {} in the committee", args.node))?
        .clone();
    let worker = member
        .workers
        .get(args.worker)
        .with_context(|| format!("node {} has no worker {}", args.node, args.worker))?
        .clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let admission = runtime.block_on(async {
        let mut client = TransactionClient::connect_sized(
            Environment::Udp,
            &worker.transactions,
            member.public_key,
            1 << 20,
            None,
            args.max_udp_payload,
        )
        .await?;
        let start = Instant::now();
        let total = Duration::from_secs(args.duration);
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut sent = 0u64;
        // Transactions the schedule asked for that this client could not send in time
        // (held back by the node's flow control, or its own machine saturated):
        // skipped, not sent late in a burst, and reported, so the offered load is
        // what was really offered.
        let mut skipped = 0u64;
        let most_behind = (args.rate / 10).max(1); // 100 ms of input
        while start.elapsed() < total {
            ticker.tick().await;
            let due = (start.elapsed().as_secs_f64() * args.rate as f64) as u64;
            if due > sent + skipped + most_behind {
                skipped = due - sent - most_behind;
            }
            while sent + skipped < due {
                let sample = args.sample_every > 0 && sent % args.sample_every == 0;
                client
                    .submit(Bytes::from(tx::make(args.tx_size, args.id, sent, sample)))
                    .await?;
                sent += 1;
            }
            client.flush().await?;
            // Only the counts matter here.
            client.take_refused();
        }
        let (admission, _) = client.finish().await?;
        anyhow::Ok((admission, skipped))
    })?;
    let (admission, skipped) = admission;
    let summary = ClientSummary {
        sent: admission.sent,
        accepted: admission.sent - admission.refused,
        refused: admission.refused,
        skipped,
    };
    println!(
        "client {}: sent {} transactions of {} bytes to node {}: {} accepted, {} refused (the node was past its capacity); {} held back (the node's flow control, or this client's CPU)",
        args.id, summary.sent, args.tx_size, args.node, summary.accepted, summary.refused, summary.skipped
    );
    if let Some(path) = &args.summary {
        std::fs::write(path, serde_json::to_vec(&summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
