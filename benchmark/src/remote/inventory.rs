//! The inventory of a cluster: one `[[host]]` per machine (how to reach it over ssh, its
//! public and private addresses, region, roles and work directory), and optional
//! `[ssh]` settings shared by all. A laptop cluster writes it by hand;
//! `bftlab remote inventory --from-terraform` writes it from the cloud recipe's output.
//!
//! ```toml
//! [ssh]                          # all optional
//! identity = "~/.ssh/bftlab"     # private key (ssh -i)
//! known_hosts = "known_hosts"    # host keys file, relative to the inventory; keys of new
//!                                # hosts are accepted on first use, changed ones refused
//! port = 22
//!
//! [[host]]
//! name = "h0"
//! ssh = "bftlab@203.0.113.10"    # ssh destination
//! public = "203.0.113.10"
//! private = "10.0.1.10"          # committee addresses (node to node, client to node)
//! region = "us-east-1"
//! roles = ["node", "client"]     # node, client, monitor
//! workdir = "/home/bftlab/work"  # bftlab keeps everything under <workdir>/bftlab
//! ```

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Most hosts in one inventory.
const MAX_HOSTS: usize = 1_000;

/// What a host does in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs committee members.
    Node,
    /// Runs load clients.
    Client,
    /// Runs Prometheus, scraping the nodes.
    Monitor,
}

/// Shared ssh settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// Private key file (`ssh -i`), relative to the inventory's directory.
    #[serde(default)]
    pub identity: Option<PathBuf>,
    /// Known-hosts file, relative to the inventory's directory (default: ssh's own).
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// Port (default 22).
    #[serde(default)]
    pub port: Option<u16>,
}

/// One machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// A short name (distinct; used for the results' directories).
    pub name: String,
    /// The ssh destination (`user@address` or an alias of the operator's ssh config).
    pub ssh: String,
    /// The address the operator reaches it at.
    pub public: String,
    /// The address other hosts reach it at (the committee's addresses).
    pub private: String,
    /// Its region (a region of the latency matrix, when one is emulated).
    #[serde(default)]
    pub region: Option<String>,
    /// What it does.
    pub roles: Vec<Role>,
    /// An absolute directory; bftlab writes only under `<workdir>/bftlab`.
    pub workdir: String,
}

impl Host {
    /// `<workdir>/bftlab`: everything bftlab puts on the host.
    pub fn home(&self) -> String {
        format!("{}/bftlab", self.workdir.trim_end_matches('/'))
    }

    /// Whether it has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// A cluster's inventory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Shared ssh settings.
    #[serde(default)]
    pub ssh: SshSettings,
    /// The machines.
    #[serde(default)]
    pub host: Vec<Host>,
    /// The directory relative paths are resolved against (the inventory file's).
    #[serde(skip)]
    pub base: PathBuf,
}

/// A string safe to put in a remote shell command unquoted: letters, digits and
/// `@ . _ - : / + = ,`.
pub fn shell_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@._-:/+=,".contains(&b))
}

impl Inventory {
    /// Read and check an inventory file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut inventory = Self::parse(&text).with_context(|| path.display().to_string())?;
        inventory.base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(inventory)
    }

    /// Parse and check an inventory's text.
    pub fn parse(text: &str) -> Result<Self> {
        let inventory: Inventory = toml::from_str(text).context("not a valid inventory")?;
        inventory.check()?;
        Ok(inventory)
    }

    /// Check names, addresses and directories (they go into remote shell commands, so
    /// only plain characters are accepted).
    pub fn check(&self) -> Result<()> {
        if self.host.is_empty() || self.host.len() > MAX_HOSTS {
            anyhow::bail!("an inventory lists between 1 and {MAX_HOSTS} hosts");
        }
        let mut names = std::collections::BTreeSet::new();
        for h in &self.host {
            let bad = |what: &str| anyhow::anyhow!("host {:?}: {what}", h.name);
            if !names.insert(h.name.as_str()) {
                return Err(bad("two hosts have this name"));
            }
            for (field, value) in [
                ("name", &h.name),
                ("ssh", &h.ssh),
                ("public", &h.public),
                ("private", &h.private),
                ("workdir", &h.workdir),
            ] {
                if !shell_safe(value) {
                    return Err(bad(&format!(
                        "{field} {value:?} must be letters, digits and @._-:/+=, only"
                    )));
                }
            }
            if !h
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                // It names a local directory of the results.
                return Err(bad("name must be letters, digits, - and _ only"));
            }
            if h.ssh.starts_with('-') {
                return Err(bad("an ssh destination cannot start with '-'"));
            }
            if !h.workdir.starts_with('/') || h.workdir.trim_end_matches('/').is_empty() {
                return Err(bad("workdir must be an absolute directory other than /"));
            }
            if h.workdir.split('/').any(|part| part == "..") {
                return Err(bad("workdir must not contain .."));
            }
            if h.roles.is_empty() {
                return Err(bad("roles must name node, client or monitor"));
            }
        }
        if !self.host.iter().any(|h| h.has(Role::Node)) {
            anyhow::bail!("no host has the node role");
        }
        Ok(())
    }

    /// The hosts with `role`, in inventory order.
    pub fn with(&self, role: Role) -> Vec<&Host> {
        self.host.iter().filter(|h| h.has(role)).collect()
    }

    /// A path of the `[ssh]` settings, resolved against the inventory's directory (`~/`
    /// is the home directory).
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if let (Ok(rest), Some(home)) = (path.strip_prefix("~"), std::env::var_os("HOME")) {
            return PathBuf::from(home).join(rest);
        }
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }
}

/// One instance in the cloud recipe's `terraform output -json` (its `hosts` output).
#[derive(Debug, Deserialize)]
struct TerraformHost {
    name: String,
    public_ip: String,
    private_ip: String,
    region: String,
    #[serde(default)]
    roles: Option<Vec<Role>>,
}

/// An inventory from the output of `terraform output -json` (or `tofu output -json`) of
/// `deploy/aws`: its `hosts` output lists the instances; `ssh_user` names the login.
/// Every host is a node and a client unless the output gives its roles. Instances of
/// one region reach each other at their private addresses; across regions (separate
/// VPCs, no peering) only the public ones route, so a multi-region cluster's committee
/// uses those.
pub fn from_terraform(text: &str, workdir: &str, identity: Option<PathBuf>) -> Result<Inventory> {
    let output: serde_json::Value =
        serde_json::from_str(text).context("not the JSON of `terraform output -json`")?;
    let hosts = output
        .pointer("/hosts/value")
        .context("no `hosts` output (is this deploy/aws's state?)")?;
    let hosts: Vec<TerraformHost> =
        serde_json::from_value(hosts.clone()).context("the `hosts` output")?;
    let regions: std::collections::BTreeSet<&str> =
        hosts.iter().map(|h| h.region.as_str()).collect();
    let one_region = regions.len() <= 1;
    let user = output
        .pointer("/ssh_user/value")
        .and_then(|v| v.as_str())
        .unwrap_or("ubuntu");
    let inventory = Inventory {
        ssh: SshSettings {
            identity,
            known_hosts: Some(PathBuf::from("known_hosts")),
            port: None,
        },
        host: hosts
            .into_iter()
            .map(|h| Host {
                ssh: format!("{user}@{}", h.public_ip),
                name: h.name,
                private: if one_region {
                    h.private_ip
                } else {
                    h.public_ip.clone()
                },
                public: h.public_ip,
                region: Some(h.region),
                roles: h.roles.unwrap_or_else(|| vec![Role::Node, Role::Client]),
                workdir: workdir.into(),
            })
            .collect(),
        base: PathBuf::new(),
    };
    inventory.check()?;
    Ok(inventory)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[ssh]
identity = "id_ed25519"
[[host]]
name = "h0"
ssh = "root@10.77.0.1"
public = "10.77.0.1"
private = "10.77.0.1"
region = "us-east-1"
roles = ["node", "client"]
workdir = "/tmp/c/h0"
[[host]]
name = "m"
ssh = "root@10.77.0.9"
public = "10.77.0.9"
private = "10.77.0.9"
roles = ["monitor"]
workdir = "/tmp/c/m/"
"#;

    #[test]
    fn an_inventory_parses_and_lists_hosts_by_role() {
        let i = Inventory::parse(GOOD).unwrap();
        assert_eq!(i.with(Role::Node).len(), 1);
        assert_eq!(i.with(Role::Monitor)[0].home(), "/tmp/c/m/bftlab");
        assert_eq!(i.ssh.identity, Some(PathBuf::from("id_ed25519")));
    }

    #[test]
    fn unsafe_or_inconsistent_inventories_are_refused() {
        for (from, to) in [
            ("workdir = \"/tmp/c/h0\"", "workdir = \"/\""),
            ("workdir = \"/tmp/c/h0\"", "workdir = \"tmp\""),
            ("workdir = \"/tmp/c/h0\"", "workdir = \"/tmp/../etc\""),
            ("workdir = \"/tmp/c/h0\"", "workdir = \"/tmp/x; rm -rf ~\""),
            ("ssh = \"root@10.77.0.1\"", "ssh = \"-oProxyCommand=x\""),
            ("name = \"m\"", "name = \"h0\""),
            ("name = \"m\"", "name = \"../m\""),
            ("roles = [\"node\", \"client\"]", "roles = [\"client\"]"),
            ("roles = [\"node\", \"client\"]", "roles = [\"leader\"]"),
            ("region = \"us-east-1\"", "zone = \"a\""),
        ] {
            assert!(
                Inventory::parse(&GOOD.replacen(from, to, 1)).is_err(),
                "{to}"
            );
        }
        assert!(Inventory::parse("").is_err());
    }

    #[test]
    fn the_terraform_sample_becomes_an_inventory() {
        let sample = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/aws/sample-output.json"),
        )
        .unwrap();
        let i = from_terraform(&sample, "/home/ubuntu/work", None).unwrap();
        assert!(i.host.len() >= 4);
        let h = &i.host[0];
        assert!(h.ssh.starts_with("ubuntu@") && h.ssh.ends_with(&h.public));
        assert!(h.region.is_some() && h.has(Role::Node));
        // Four regions: the committee uses the public addresses.
        assert_eq!(h.private, h.public);
        let mut one = sample.clone();
        for r in ["eu-west-1", "ap-southeast-1", "us-west-1"] {
            one = one.replace(&format!("\"region\": \"{r}\""), "\"region\": \"us-east-1\"");
        }
        let i = from_terraform(&one, "/w", None).unwrap();
        assert_eq!(i.host[0].private, "172.31.10.11");
        assert!(from_terraform("{}", "/w", None).is_err());
        assert!(from_terraform("not json", "/w", None).is_err());
    }
}
