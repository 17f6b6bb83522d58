//! `bftlab remote`: benchmarks on a cluster of machines reached over ssh, from an
//! inventory: checks of the hosts, runs (the flags of `bftlab local`, plus a scenario's
//! crashes, restarts and Byzantine members), and undoing everything it started.

mod check;
mod firewall;
pub mod inventory;
mod netem;
mod run;
mod ssh;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use inventory::Inventory;
use std::path::PathBuf;

/// Arguments of `bftlab remote`.
#[derive(Args, Debug)]
pub struct RemoteArgs {
    #[command(subcommand)]
    command: RemoteCommand,
}

/// The inventory flag shared by the subcommands.
#[derive(Args, Debug, Clone)]
pub struct InventoryArg {
    /// The cluster's inventory (TOML; see docs/remote.md).
    #[arg(long, short = 'i', default_value = "inventory.toml")]
    pub inventory: PathBuf,
}

#[derive(Subcommand, Debug)]
enum RemoteCommand {
    /// Check every host: ssh, clock offset, ports, free disk, kernel.
    Check(check::CheckArgs),
    /// Run a benchmark on the cluster and collect its record.
    Run(run::RunArgs),
    /// Kill every bftlab process of every run on the hosts.
    Kill(InventoryArg),
    /// Kill, then remove everything bftlab put on the hosts (`<workdir>/bftlab`).
    Clean(InventoryArg),
    /// Write an inventory from `terraform output -json` of deploy/aws.
    Inventory(InventoryFromArgs),
    /// Write per-host `tc netem` scripts that impose a latency matrix (for hosts whose
    /// kernel has netem; otherwise use `run --latency-matrix`, emulated in bftlab).
    Netem(netem::NetemArgs),
}

/// Arguments of `bftlab remote inventory`.
#[derive(Args, Debug)]
struct InventoryFromArgs {
    /// The JSON that `terraform output -json` (or `tofu output -json`) printed.
    #[arg(long)]
    from_terraform: PathBuf,
    /// Work directory on every host.
    #[arg(long, default_value = "/home/ubuntu/bftlab-work")]
    workdir: String,
    /// The private key that reaches the hosts.
    #[arg(long)]
    identity: Option<PathBuf>,
    /// Where to write the inventory.
    #[arg(long, short = 'o', default_value = "inventory.toml")]
    out: PathBuf,
}

/// Run `bftlab remote`.
pub fn run(args: RemoteArgs) -> Result<()> {
    match args.command {
        RemoteCommand::Check(a) => check::run(a),
        RemoteCommand::Run(a) => run::run(a),
        RemoteCommand::Kill(a) => kill(&Inventory::load(&a.inventory)?, false),
        RemoteCommand::Clean(a) => kill(&Inventory::load(&a.inventory)?, true),
        RemoteCommand::Inventory(a) => {
            let text = std::fs::read_to_string(&a.from_terraform)
                .with_context(|| format!("cannot read {}", a.from_terraform.display()))?;
            let inventory = inventory::from_terraform(&text, &a.workdir, a.identity)?;
            std::fs::write(&a.out, toml::to_string_pretty(&inventory)?)
                .with_context(|| format!("cannot write {}", a.out.display()))?;
            let ansible = a.out.with_file_name("hosts.ini");
            std::fs::write(&ansible, ansible_hosts(&inventory))
                .with_context(|| format!("cannot write {}", ansible.display()))?;
            println!(
                "wrote {} ({} hosts; host keys are accepted on first use into known_hosts beside it) and {} (for deploy/ansible/prepare.yml)",
                a.out.display(),
                inventory.host.len(),
                ansible.display()
            );
            Ok(())
        }
        RemoteCommand::Netem(a) => netem::run(a),
    }
}

/// An Ansible inventory (INI) of the hosts: name, address and login.
fn ansible_hosts(inventory: &Inventory) -> String {
    let mut text = String::from("# Written by bftlab remote inventory.\n[bftlab]\n");
    for h in &inventory.host {
        let (user, _) = h.ssh.split_once('@').unwrap_or(("", &h.ssh));
        text.push_str(&format!("{} ansible_host={}", h.name, h.public));
        if !user.is_empty() {
            text.push_str(&format!(" ansible_user={user}"));
        }
        text.push('\n');
    }
    text
}

/// The shell lines that kill every process group whose pid file under `home` matches
/// `pid_files` (a glob) and that is still ours: no exit status yet, and the process
/// still works in the directory of its pid file (a pid the system has since given to
/// another process is left alone).
pub(crate) fn kill_script(home: &str, pid_files: &str) -> String {
    format!(
        "cd {home} 2>/dev/null || exit 0; for f in {pid_files}; do [ -f \"$f\" ] || continue; \
         d=$(cd \"$(dirname \"$f\")\" && pwd); p=$(cat \"$f\"); \
         if [ ! -f \"${{f%.pid}}.exit\" ] && [ \"$(readlink /proc/$p/cwd 2>/dev/null)\" = \"$d\" ]; then \
         kill -KILL -- -$p 2>/dev/null; fi; rm -f \"$f\"; done; true"
    )
}

/// `remote kill` and `remote clean`.
fn kill(inventory: &Inventory, clean: bool) -> Result<()> {
    let ssh = ssh::Ssh::new(inventory)?;
    let mut failed = 0;
    for host in &inventory.host {
        let home = host.home();
        // Firewall rules of a partition, if any were left (needs root: best effort).
        let mut script = format!(
            "{}; {} 2>/dev/null; true",
            kill_script(&home, "run-*/*.pid monitor/*.pid"),
            firewall::as_root(&firewall::remove())
        );
        if clean {
            script.push_str(&format!("; rm -rf {home}"));
        }
        match ssh.check(host, &script) {
            Ok(_) => println!(
                "{}: {}",
                host.name,
                if clean {
                    "killed and removed"
                } else {
                    "killed"
                }
            ),
            Err(e) => {
                failed += 1;
                println!("{}: {e:#}", host.name);
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} host(s) could not be reached");
    }
    Ok(())
}
