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
    /// A parameter, `KEY=VALUE` (repeatable): sets `[consensus.<protocol>] KEY` in the
    /// parameters the nodes run with, e.g. `--param commit_rule=two-chain`; a key
    /// `mempool.FIELD` or `network.FIELD` sets that section instead, e.g.
    /// `--param mempool.gc_depth=100`. The value is read as TOML (a number, a boolean,
    /// a quoted string), else as a string.
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
            match key.split_once('.') {
                Some(("mempool", field)) => set_field(&mut parameters.mempool, field, parsed)?,
                Some(("network", field)) => set_field(&mut parameters.network, field, parsed)?,
                Some((section, _)) => anyhow::bail!(
                    "--param {key}: a prefixed key names the mempool or network section \
                     (mempool.gc_depth=...), not {section:?}; protocol keys take no prefix"
                ),
                None => {
                    parameters
                        .consensus
                        .entry(self.protocol.clone())
                        .or_default()
                        .insert(key.into(), parsed);
                }
            }
        }
        registry::check(&self.protocol, parameters)?;
        Ok(())
    }

    /// A short name for the variant run (`commit_rule=two-chain`), empty on defaults.
    pub fn variant(&self) -> String {
        self.params.join(",")
    }
}

/// Set `field` of a parameter section to `value`, through its TOML form, so the
/// section's own rules apply (an unknown field or a value of the wrong type is an
/// error naming the field).
fn set_field<T>(section: &mut T, field: &str, value: toml::Value) -> Result<()>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut table = toml::Table::try_from(&*section).context("parameter section as TOML")?;
    if !table.contains_key(field) {
        let known: Vec<&str> = table.keys().map(String::as_str).collect();
        anyhow::bail!("unknown parameter {field:?}; known: {}", known.join(", "));
    }
    table.insert(field.into(), value);
    *section = table
        .try_into()
        .with_context(|| format!("parameter {field:?}"))?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(params: &[&str]) -> ProtocolArgs {
        ProtocolArgs {
            protocol: "hotstuff".into(),
            params: params.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn a_prefixed_key_sets_the_mempool_or_network_section() {
        let mut p = Parameters::default();
        args(&[
            "mempool.history_retention_rounds=0",
            "network.max_frame_size=1000000",
            "commit_rule=two-chain",
        ])
        .apply(&mut p)
        .unwrap();
        assert_eq!(p.mempool.history_retention_rounds, 0);
        assert_eq!(p.network.max_frame_size, 1_000_000);
        assert_eq!(
            p.consensus["hotstuff"]["commit_rule"],
            toml::Value::String("two-chain".into())
        );
    }

    #[test]
    fn an_unknown_section_field_or_a_wrong_type_is_refused() {
        for bad in [
            "mempool.no_such_field=1",
            "storage.gc_depth=1",
            "mempool.gc_depth=\"fifty\"",
        ] {
            let mut p = Parameters::default();
            let e = args(&[bad]).apply(&mut p).unwrap_err();
            assert!(!format!("{e:#}").is_empty(), "{bad}");
        }
        let mut p = Parameters::default();
        let e = args(&["mempool.no_such_field=1"])
            .apply(&mut p)
            .unwrap_err();
        assert!(format!("{e:#}").contains("gc_depth"), "{e:#}");
    }
}
