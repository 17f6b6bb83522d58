//! A scenario's partitions on real hosts, as nftables rules: each cut link is the pair
//! of one node's UDP ports and another's, dropped on input at both ends (QUIC sends from
//! the port a node listens on, so a node's ports name its traffic whichever host it is
//! on). Clients are not cut (their ports are ephemeral, outside the committee's). All
//! rules live in one table, `inet bftlab`; healing flushes it, `remote kill` deletes it.
//! Needs `nft` and root (or `sudo -n`) on the hosts.

use super::run::Plan;

/// The table every rule goes in.
pub const TABLE: &str = "inet bftlab";

/// The nft commands that create the table and its input and output chains (idempotent).
pub fn setup() -> String {
    format!(
        "nft add table {TABLE} && \
         nft add chain {TABLE} input '{{ type filter hook input priority 0; }}' && \
         nft add chain {TABLE} output '{{ type filter hook output priority 0; }}'"
    )
}

/// The UDP ports of node `i`, as an nft set element (`7003-7005`).
fn ports(plan: &Plan, i: usize) -> String {
    let stride = 1 + 2 * plan.workers;
    let first = plan.base_port as usize + stride * i;
    format!("{first}-{}", first + stride - 1)
}

/// Every committee port, as an nft range.
fn all_ports(plan: &Plan) -> String {
    let stride = 1 + 2 * plan.workers;
    let first = plan.base_port as usize;
    format!("{first}-{}", first + stride * plan.nodes.len() - 1)
}

/// The rules that cut every link between `a` and `b` (both directions), by host name:
/// on each host, the nft commands to run.
pub fn partition(plan: &Plan, a: &[usize], b: &[usize]) -> Vec<(String, String)> {
    let mut rules = Vec::new();
    for &x in a {
        for &y in b {
            for (to, from) in [(x, y), (y, x)] {
                let rule = format!(
                    "nft add rule {TABLE} input ip saddr {} udp sport {} udp dport {} drop",
                    plan.nodes[from].private,
                    ports(plan, from),
                    ports(plan, to)
                );
                rules.push((plan.nodes[to].name.clone(), rule));
            }
        }
    }
    rules
}

/// Nothing node `n` sends to a member arrives.
pub fn isolate_outbound(plan: &Plan, n: usize) -> Vec<(String, String)> {
    vec![(
        plan.nodes[n].name.clone(),
        format!(
            "nft add rule {TABLE} output udp sport {} udp dport {} drop",
            ports(plan, n),
            all_ports(plan)
        ),
    )]
}

/// Nothing a member sends to node `n` arrives.
pub fn isolate_inbound(plan: &Plan, n: usize) -> Vec<(String, String)> {
    vec![(
        plan.nodes[n].name.clone(),
        format!(
            "nft add rule {TABLE} input udp sport {} udp dport {} drop",
            all_ports(plan),
            ports(plan, n)
        ),
    )]
}

/// Repair every link: empty the table's chains.
pub fn heal() -> String {
    format!("nft flush table {TABLE} 2>/dev/null; true")
}

/// Remove the table.
pub fn remove() -> String {
    format!("nft delete table {TABLE} 2>/dev/null; true")
}

/// Run nft commands as root: directly if we are, else through `sudo -n`.
pub fn as_root(commands: &str) -> String {
    format!(
        "if [ \"$(id -u)\" = 0 ]; then sh -c \"{0}\"; else sudo -n sh -c \"{0}\"; fi",
        commands.replace('"', "\\\"")
    )
}

#[cfg(test)]
mod tests {
    use super::super::inventory::Inventory;
    use super::super::run::place;
    use super::*;

    #[test]
    fn a_partition_drops_each_cut_link_at_both_ends_by_node_ports() {
        let inventory = Inventory::parse(
            r#"
[[host]]
name = "a"
ssh = "a"
public = "10.0.0.1"
private = "10.0.0.1"
roles = ["node"]
workdir = "/w"
[[host]]
name = "b"
ssh = "b"
public = "10.0.0.2"
private = "10.0.0.2"
roles = ["node"]
workdir = "/w"
"#,
        )
        .unwrap();
        // Nodes 0 and 2 on host a, 1 and 3 on b.
        let plan = place(&inventory, 4, 1, 7000).unwrap();
        let rules = partition(&plan, &[0], &[2, 3]);
        assert_eq!(
            rules,
            vec![
                ("a".to_string(), "nft add rule inet bftlab input ip saddr 10.0.0.1 udp sport 7006-7008 udp dport 7000-7002 drop".to_string()),
                ("a".to_string(), "nft add rule inet bftlab input ip saddr 10.0.0.1 udp sport 7000-7002 udp dport 7006-7008 drop".to_string()),
                ("a".to_string(), "nft add rule inet bftlab input ip saddr 10.0.0.2 udp sport 7009-7011 udp dport 7000-7002 drop".to_string()),
                ("b".to_string(), "nft add rule inet bftlab input ip saddr 10.0.0.1 udp sport 7000-7002 udp dport 7009-7011 drop".to_string()),
            ]
        );
        assert_eq!(
            isolate_inbound(&plan, 1)[0].1,
            "nft add rule inet bftlab input udp sport 7000-7011 udp dport 7003-7005 drop"
        );
        assert_eq!(
            isolate_outbound(&plan, 3)[0].1,
            "nft add rule inet bftlab output udp sport 7009-7011 udp dport 7000-7011 drop"
        );
        assert!(as_root(&setup()).contains("sudo -n sh -c"));
    }
}
