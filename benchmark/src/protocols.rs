//! Choosing a protocol on the command line (`--protocol NAME --param KEY=VALUE`), and
//! `bftlab protocols`, which lists the registered protocols and their parameters.

use anyhow::{Context, Result};
use clap::Args;
use consensus::registry;
use primitives::Parameters;

/// The protocol flags shared by `bftlab local` and `bftlab node`.
#[derive(Args, Debug, Clone)]
pub struct ProtocolArgs {
    /// Consensus protocol (`bftlab protocols` lists them).
    #[arg(long, default_value = "hotstuff")]
    pub protocol: String,
    /// A protocol parameter, `KEY=VALUE` (repeatable): sets `[consensus.<protocol>] KEY`
    /// in the parameters the nodes run with, e.g. `--param commit_rule=two-chain`. The
    /// value is read as TOML (a number, a boolean, a quoted string), else as a string.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
}

impl ProtocolArgs {
    /// Put the `--param` values into `parameters` and check the protocol and all its
    /// parameters (an unknown name or key is an error naming the valid ones).
    pub fn apply(&self, parameters: &mut Parameters) -> Result<()> {
        registry::find(&self.protocol)?;
        for p in &self.params {
            let (key, value) = p
                .split_once('=')
                .with_context(|| format!("--param wants KEY=VALUE, got {p:?}"))?;
            let key = key.trim();
            let value = value.trim();
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.into()));
            parameters
                .consensus
                .entry(self.protocol.clone())
                .or_default()
                .insert(key.into(), parsed);
        }
        registry::check(&self.protocol, parameters)?;
        Ok(())
    }

    /// A short name for the variant run (`commit_rule=two-chain`), empty on defaults.
    pub fn variant(&self) -> String {
        self.params.join(",")
    }
}

/// Run `bftlab protocols`.
pub fn run() -> Result<()> {
    for entry in registry::PROTOCOLS {
        println!("{} - {}", entry.name, entry.description);
        println!(
            "  parameters ([consensus.{}] in the parameters file, or --param KEY=VALUE):",
            entry.name
        );
        for p in entry.parameters() {
            println!("    {:<20} = {:<14} {}", p.name, p.default, p.doc);
        }
    }
    Ok(())
}
