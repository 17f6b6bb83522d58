//! `bftlab remote netem`: per-host `tc` scripts that impose a latency matrix in the
//! kernel, for hosts that have netem (this is the alternative to the emulation in the
//! application, `--latency-matrix`, which needs no kernel support).
//!
//! Each host's script puts an HTB root on a device with one default class (no delay)
//! and one class per distinct one-way latency to the other hosts, each with a netem
//! qdisc of that delay (plus jitter and loss if asked), and a u32 filter per
//! destination address sending its packets into its latency's class. The delay is on
//! egress, so each direction of a path is delayed once, by the one-way latency
//! (half the matrix's round trip).

use super::inventory::{Host, Inventory};
use super::InventoryArg;
use anyhow::{Context, Result};
use clap::Args;
use network::latency_matrix::LatencyMatrix;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Arguments of `bftlab remote netem`.
#[derive(Args, Debug)]
pub struct NetemArgs {
    #[command(flatten)]
    inventory: InventoryArg,
    /// The latency matrix (regions of the inventory's hosts).
    #[arg(long)]
    latency_matrix: PathBuf,
    /// Jitter on every delayed class, ms (netem's `delay X Y`).
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Loss on every delayed class, percent.
    #[arg(long, default_value_t = 0.0)]
    loss_percent: f64,
    /// Where to write `netem-<host>.sh`.
    #[arg(long, default_value = "netem")]
    out: PathBuf,
}

/// The script for `host` among `hosts`.
pub fn script(
    host: &Host,
    hosts: &[Host],
    matrix: &LatencyMatrix,
    jitter_ms: u64,
    loss_percent: f64,
) -> Result<String> {
    let region = |h: &Host| -> Result<usize> {
        let name = h
            .region
            .as_deref()
            .with_context(|| format!("host {} has no region", h.name))?;
        matrix
            .region(name)
            .with_context(|| format!("host {}: region {name} is not in the matrix", h.name))
    };
    let own = region(host)?;
    // Destinations by delay (microseconds), in inventory order within each.
    let mut classes: BTreeMap<u64, Vec<Ipv4Addr>> = BTreeMap::new();
    for other in hosts.iter().filter(|h| h.private != host.private) {
        let address: Ipv4Addr = other.private.parse().with_context(|| {
            format!(
                "host {}: netem filters need an IPv4 private address",
                other.name
            )
        })?;
        let us = (matrix.one_way_ms(own, region(other)?) * 1000.0).round() as u64;
        let list = classes.entry(us).or_default();
        if !list.contains(&address) {
            list.push(address);
        }
    }
    let mut s = format!(
        "#!/bin/sh\n\
         # Written by `bftlab remote netem` for host {} (region {}).\n\
         # Usage: sh {} [DEVICE] [off]   (DEVICE: default eth0; `off` removes the delays)\n\
         set -e\n\
         DEV=${{1:-eth0}}\n\
         tc qdisc del dev \"$DEV\" root 2>/dev/null || true\n\
         [ \"${{2:-}}\" = off ] && exit 0\n\
         tc qdisc add dev \"$DEV\" root handle 1: htb default 1\n\
         tc class add dev \"$DEV\" parent 1: classid 1:1 htb rate 100gbit\n",
        host.name,
        matrix.regions[own],
        file_name(host)
    );
    let mut extra = String::new();
    if jitter_ms > 0 {
        extra.push_str(&format!(" {jitter_ms}ms"));
    }
    if loss_percent > 0.0 {
        extra.push_str(&format!(" loss {loss_percent}%"));
    }
    for (k, (us, addresses)) in classes.iter().enumerate() {
        let class = k + 2;
        s.push_str(&format!(
            "tc class add dev \"$DEV\" parent 1: classid 1:{class} htb rate 100gbit\n\
             tc qdisc add dev \"$DEV\" parent 1:{class} handle {class}: netem delay {}us{extra} limit 100000\n",
            us
        ));
        for a in addresses {
            s.push_str(&format!(
                "tc filter add dev \"$DEV\" parent 1: protocol ip prio 1 u32 match ip dst {a}/32 flowid 1:{class}\n"
            ));
        }
    }
    Ok(s)
}

fn file_name(host: &Host) -> String {
    format!("netem-{}.sh", host.name)
}

/// Run `bftlab remote netem`.
pub fn run(args: NetemArgs) -> Result<()> {
    let inventory = Inventory::load(&args.inventory.inventory)?;
    let matrix = LatencyMatrix::load(&args.latency_matrix)?;
    if !(0.0..100.0).contains(&args.loss_percent) {
        anyhow::bail!("--loss-percent must be in [0, 100)");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for host in &inventory.host {
        let text = script(
            host,
            &inventory.host,
            &matrix,
            args.jitter_ms,
            args.loss_percent,
        )?;
        let path = args.out.join(file_name(host));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "wrote {} scripts to {}; run each on its host as root: sh netem-<host>.sh DEVICE",
        inventory.host.len(),
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_delays_each_destination_by_its_regions_latency() {
        let inventory = Inventory::parse(
            r#"
[[host]]
name = "a"
ssh = "a"
public = "10.0.0.1"
private = "10.0.0.1"
region = "east"
roles = ["node"]
workdir = "/w"
[[host]]
name = "b"
ssh = "b"
public = "10.0.0.2"
private = "10.0.0.2"
region = "west"
roles = ["node"]
workdir = "/w"
[[host]]
name = "c"
ssh = "c"
public = "10.0.0.3"
private = "10.0.0.3"
region = "east"
roles = ["node"]
workdir = "/w"
"#,
        )
        .unwrap();
        let matrix = LatencyMatrix::parse("region,east,west\neast,1,81\nwest,81,2\n").unwrap();
        let got = script(&inventory.host[0], &inventory.host, &matrix, 2, 0.5).unwrap();
        let expected = r#"#!/bin/sh
# Written by `bftlab remote netem` for host a (region east).
# Usage: sh netem-a.sh [DEVICE] [off]   (DEVICE: default eth0; `off` removes the delays)
set -e
DEV=${1:-eth0}
tc qdisc del dev "$DEV" root 2>/dev/null || true
[ "${2:-}" = off ] && exit 0
tc qdisc add dev "$DEV" root handle 1: htb default 1
tc class add dev "$DEV" parent 1: classid 1:1 htb rate 100gbit
tc class add dev "$DEV" parent 1: classid 1:2 htb rate 100gbit
tc qdisc add dev "$DEV" parent 1:2 handle 2: netem delay 500us 2ms loss 0.5% limit 100000
tc filter add dev "$DEV" parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.3/32 flowid 1:2
tc class add dev "$DEV" parent 1: classid 1:3 htb rate 100gbit
tc qdisc add dev "$DEV" parent 1:3 handle 3: netem delay 40500us 2ms loss 0.5% limit 100000
tc filter add dev "$DEV" parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.2/32 flowid 1:3
"#;
        assert_eq!(got, expected);
        let mut lost = inventory.host.clone();
        lost[1].region = Some("moon".into());
        assert!(script(&lost[0], &lost, &matrix, 0, 0.0).is_err());
    }
}
