//! A node's live metrics for Prometheus (`bftlab node --metrics ADDR`): the network's,
//! the mempool's, the client endpoints', the consensus driver's and the protocol core's
//! own counters, read from the components at each scrape, and histograms of commit
//! latency observed as the node commits. Served as OpenMetrics text at `/metrics`.
//!
//! Names: `bftlab_<component>_<field>` from each component's snapshot (counters get
//! `_total`; the fields in [`GAUGES`] are gauges), reasons as a `reason` label
//! (`bftlab_network_drops_total{reason="queue_full"}`), the core's counters as
//! gauges `bftlab_core_<name>` (each protocol has its own). Every series carries the
//! node's id as label `node`.

use consensus::driver::DriverMetrics;
use mempool::MempoolMetrics;
use network::clients::ClientMetrics;
use network::wan_emulation::WanEmulation;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Snapshot fields that are levels, not running totals.
pub const GAUGES: &[&str] = &[
    "queued_bytes",
    "inbound_queued_bytes",
    "round",
    "requested_certificates",
    "suspended_headers",
    "pending_certificates",
    "executed_round",
    "executed_position",
];

/// Most scrapes served at once; more wait for their turn.
const MAX_CONNECTIONS: usize = 8;
/// Longest request head read.
const MAX_REQUEST: usize = 8 * 1024;

/// The metrics a node observes itself (the rest is read from its components).
#[derive(Clone)]
pub struct Observed {
    /// From a sampled transaction's sending (client clock) to its commit, seconds.
    pub e2e_latency: Histogram,
    /// From this node's own certificate reaching consensus to its commit, seconds.
    pub consensus_latency: Histogram,
    /// Transactions committed.
    pub committed_transactions: Counter,
    /// Bytes of transactions committed.
    pub committed_bytes: Counter,
}

/// The components a scrape reads.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The transport's counters.
    pub network: Arc<network::Metrics>,
    /// The mempool's.
    pub mempool: Arc<MempoolMetrics>,
    /// Each worker's client endpoint.
    pub clients: Vec<Arc<ClientMetrics>>,
    /// The consensus driver's, with the core's own.
    pub driver: Arc<DriverMetrics>,
    /// The WAN emulation, if any.
    pub emulation: Option<Arc<WanEmulation>>,
}

#[derive(Debug)]
struct Scrape(Sources);

/// Encode every numeric field of a component's snapshot (as JSON): numbers as counters
/// (gauges if listed in [`GAUGES`]), `[(reason, count)]` lists as a counter family.
fn encode_snapshot(
    encoder: &mut DescriptorEncoder,
    component: &str,
    snapshot: &serde_json::Value,
) -> Result<(), std::fmt::Error> {
    let Some(fields) = snapshot.as_object() else {
        return Ok(());
    };
    for (field, value) in fields {
        let name = format!("bftlab_{component}_{field}");
        let help = format!("{component} {}", field.replace('_', " "));
        if let Some(v) = value.as_u64() {
            if GAUGES.contains(&field.as_str()) {
                let m = encoder.encode_descriptor(&name, &help, None, MetricType::Gauge)?;
                ConstGauge::new(v as i64).encode(m)?;
            } else {
                let m = encoder.encode_descriptor(&name, &help, None, MetricType::Counter)?;
                ConstCounter::new(v).encode(m)?;
            }
        } else if let Some(list) = value.as_array() {
            let mut m = encoder.encode_descriptor(&name, &help, None, MetricType::Counter)?;
            for entry in list {
                let (Some(reason), Some(count)) = (
                    entry.get(0).and_then(|r| r.as_str()),
                    entry.get(1).and_then(|c| c.as_u64()),
                ) else {
                    continue;
                };
                let set = [("reason", reason)];
                let family = m.encode_family(&set)?;
                ConstCounter::new(count).encode(family)?;
            }
        }
    }
    Ok(())
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let json = |v: &dyn erased::Snapshot| v.json();
        encode_snapshot(&mut encoder, "network", &json(&s.network.snapshot()))?;
        encode_snapshot(&mut encoder, "mempool", &json(&s.mempool.snapshot()))?;
        // The client endpoints, summed over workers.
        let mut clients = serde_json::Map::new();
        for c in &s.clients {
            if let serde_json::Value::Object(fields) = json(&c.snapshot()) {
                for (k, v) in fields {
                    let sum = clients.get(&k).and_then(|x| x.as_u64()).unwrap_or(0)
                        + v.as_u64().unwrap_or(0);
                    clients.insert(k, sum.into());
                }
            }
        }
        encode_snapshot(&mut encoder, "clients", &clients.into())?;
        let d = &s.driver;
        let t = &d.transfer;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let driver = serde_json::json!({
            "messages": load(&d.messages),
            "rejected": load(&d.rejected),
            "blocks_committed": load(&d.blocks_committed),
            "certificates_committed": load(&d.certificates_committed),
            "timers_fired": load(&d.timers_fired),
            "evidence": load(&d.evidence),
            "reliable_dropped": load(&d.reliable_dropped),
            "executed_round": load(&d.executed_round),
            "executed_position": load(&d.executed_position),
            "stalls": [
                ["certificates", load(&d.stalls_waiting_certificates)],
                ["core", load(&d.stalls_waiting_core)],
                ["batches", load(&d.stalls_waiting_batches)],
            ],
            "transfer_probes": load(&t.probes),
            "transfer_chunks_installed": load(&t.chunks_installed),
            "transfer_entries_installed": load(&t.entries_installed),
            "transfer_chunks_refused": load(&t.chunks_refused),
            "transfer_served": load(&t.served),
            "transfer_dropped": load(&t.dropped),
            "transfer_beyond_retention": load(&t.beyond_retention),
            "transfer_checkpoints_installed": load(&t.checkpoints_installed),
            "transfer_positions_skipped": load(&t.positions_skipped),
        });
        encode_snapshot(&mut encoder, "consensus", &driver)?;
        for (name, value) in d.core_counters() {
            let name = format!("bftlab_core_{name}");
            let m = encoder.encode_descriptor(
                &name,
                "the consensus core's own counter (see its metrics module)",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(value as i64).encode(m)?;
        }
        if let Some(e) = &s.emulation {
            let c = &e.counters;
            let wan = serde_json::json!({
                "delayed": load(&c.delayed),
                "lost": load(&c.lost),
                "queue_full": load(&c.queue_full),
            });
            encode_snapshot(&mut encoder, "wan_emulation", &wan)?;
        }
        Ok(())
    }
}

/// Snapshots of any serialisable type, as JSON.
mod erased {
    pub trait Snapshot {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Snapshot for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

/// A node's registry: the scrape of its components and what it observes itself.
pub fn registry(node: u16, sources: Sources) -> (Registry, Observed) {
    let mut registry = Registry::with_labels(
        [(
            std::borrow::Cow::Borrowed("node"),
            std::borrow::Cow::Owned(node.to_string()),
        )]
        .into_iter(),
    );
    // 1 ms to about 65 s.
    let latency = || Histogram::new(exponential_buckets(0.001, 2.0, 17));
    let observed = Observed {
        e2e_latency: latency(),
        consensus_latency: latency(),
        committed_transactions: Counter::default(),
        committed_bytes: Counter::default(),
    };
    registry.register(
        "bftlab_e2e_latency_seconds",
        "From a sampled transaction's sending (client clock) to its commit",
        observed.e2e_latency.clone(),
    );
    registry.register(
        "bftlab_consensus_latency_seconds",
        "From this node's own certificate reaching consensus to its commit",
        observed.consensus_latency.clone(),
    );
    registry.register(
        "bftlab_committed_transactions",
        "Transactions committed",
        observed.committed_transactions.clone(),
    );
    registry.register(
        "bftlab_committed_bytes",
        "Bytes of transactions committed",
        observed.committed_bytes.clone(),
    );
    registry.register_collector(Box::new(Scrape(sources)));
    (registry, observed)
}

/// The registry's current text (OpenMetrics).
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

/// Serve `registry` at `http://ADDR/metrics` until the runtime ends. Anything else
/// gets a 404; a request that is too long or too slow is dropped.
pub async fn serve(listener: tokio::net::TcpListener, registry: Arc<Registry>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut head = Vec::with_capacity(512);
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                std::io::Result::Ok(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let (status, kind, body) =
                if head.starts_with(b"GET /metrics ") || head.starts_with(b"GET /metrics?") {
                    (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        render(&registry),
                    )
                } else {
                    (
                        "404 Not Found",
                        "text/plain",
                        "bftlab serves /metrics only\n".into(),
                    )
                };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                stream.write_all(response.as_bytes()),
            )
            .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn sources() -> Sources {
        Sources {
            network: Arc::new(network::Metrics::default()),
            mempool: Arc::new(MempoolMetrics::default()),
            clients: vec![Arc::new(ClientMetrics::default())],
            driver: Arc::new(DriverMetrics::default()),
            emulation: None,
        }
    }

    /// The metric family names in an OpenMetrics text.
    fn families(text: &str) -> BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect()
    }

    #[test]
    fn a_scrape_has_every_component_with_the_node_label() {
        let (registry, observed) = registry(3, sources());
        observed.e2e_latency.observe(0.25);
        observed.committed_transactions.inc_by(10);
        let text = render(&registry);
        let names = families(&text);
        for expected in [
            "bftlab_network_messages_in",
            "bftlab_network_queued_bytes",
            "bftlab_mempool_round",
            "bftlab_mempool_certificates_formed",
            "bftlab_clients_transactions",
            "bftlab_consensus_blocks_committed",
            "bftlab_consensus_stalls",
            "bftlab_e2e_latency_seconds",
            "bftlab_committed_transactions",
        ] {
            assert!(
                names.contains(expected),
                "{expected} missing from {names:?}"
            );
        }
        assert!(text.contains("# TYPE bftlab_mempool_round gauge"));
        assert!(
            text.contains("bftlab_committed_transactions_total{node=\"3\"} 10"),
            "{text}"
        );
        assert!(
            text.contains("bftlab_consensus_stalls_total{node=\"3\",reason=\"core\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("bftlab_e2e_latency_seconds_bucket{le=\"0.256\",node=\"3\"} 1")
                || text.contains("bftlab_e2e_latency_seconds_bucket{node=\"3\",le=\"0.256\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn every_metric_the_dashboard_names_is_exported() {
        let dashboard: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../deploy/grafana/bftlab.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let mut exprs = Vec::new();
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, x) in m {
                        match (k.as_str(), x) {
                            ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                            _ => walk(x, out),
                        }
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        walk(&dashboard, &mut exprs);
        assert!(exprs.len() >= 6, "{exprs:?}");
        let (registry, _) = registry(0, sources());
        let text = render(&registry);
        // Series as Prometheus stores them: counters with _total, histograms with
        // _bucket, _sum and _count (a family may have no sample yet: no drops).
        let mut series = BTreeSet::new();
        for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let mut parts = line.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            for suffix in suffixes {
                series.insert(format!("{name}{suffix}"));
            }
        }
        for expr in &exprs {
            let mut rest = expr.as_str();
            while let Some(at) = rest.find("bftlab_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // Core counters differ by protocol: the dashboard may name any core's.
                if !name.starts_with("bftlab_core_") {
                    assert!(
                        series.contains(&name),
                        "the dashboard names {name}, not exported"
                    );
                }
                rest = &rest[at + name.len()..];
            }
        }
    }
}
