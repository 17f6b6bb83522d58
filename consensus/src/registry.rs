//! The list of protocols: everything outside `consensus/src/<protocol>/` that names a
//! protocol goes through it. Adding a protocol is one line in [`PROTOCOLS`].

use crate::bullshark::{Bullshark, Tusk};
use crate::byzantine::{Adversarial, Adversary, Byzantine, Replica};
use crate::core::{parse_config, ConsensusError, Context, Protocol, ProtocolConfig};
use crate::driver::{self, DriverContext};
use crate::hotstuff::HotStuff;
use crate::snowman::Snowman;
use crate::tendermint::Tendermint;
use mempool::Certificate;
use primitives::{NodeId, Parameters};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;

/// Every registered protocol.
pub static PROTOCOLS: &[Entry] = &[
    entry::<HotStuff>(),
    entry::<Tendermint>(),
    entry::<Bullshark>(),
    entry::<Tusk>(),
    entry::<Snowman>(),
];

/// A running core's driver, ready to be spawned.
pub type DriverTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What a protocol is started with.
pub struct Launch {
    /// The core's context.
    pub context: Context,
    /// The node's parameters (its protocol table among them).
    pub parameters: Parameters,
    /// The driver's context.
    pub driver: DriverContext,
    /// Consensus messages from peers.
    pub inbound: network::Receiver,
    /// DAG certificates, in causal order.
    pub certificates: mpsc::Receiver<Certificate>,
    /// How far the committed history reaches (the position after its last entry): the
    /// executor reads the entries below it from the history.
    pub committed: tokio::sync::watch::Sender<u64>,
    /// Byzantine behaviours (simulations only).
    pub adversary: Option<Adversary>,
}

/// One parameter of a protocol, for `bftlab protocols`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterDoc {
    /// Its key in `[consensus.<protocol>]`.
    pub name: &'static str,
    /// Its default, as TOML.
    pub default: String,
    /// What it means.
    pub doc: &'static str,
}

/// A registered protocol.
pub struct Entry {
    /// Its name.
    pub name: &'static str,
    /// One line saying what it is.
    pub description: &'static str,
    parameters: fn() -> Vec<ParameterDoc>,
    check: fn(Option<&toml::Table>) -> Result<(), ConsensusError>,
    launch: fn(Launch) -> Result<DriverTask, ConsensusError>,
}

impl Entry {
    /// Its parameters with their defaults.
    pub fn parameters(&self) -> Vec<ParameterDoc> {
        (self.parameters)()
    }

    /// Check a `[consensus.<name>]` table (absent: the defaults).
    pub fn check(&self, table: Option<&toml::Table>) -> Result<(), ConsensusError> {
        (self.check)(table)
    }

    /// Build the core (honest or Byzantine) and its driver.
    pub fn launch(&self, launch: Launch) -> Result<DriverTask, ConsensusError> {
        (self.launch)(launch)
    }
}

/// The registry entry of protocol `P`.
pub const fn entry<P: Adversarial>() -> Entry {
    Entry {
        name: P::NAME,
        description: P::DESCRIPTION,
        parameters: parameters_of::<P>,
        check: check_of::<P>,
        launch: launch_of::<P>,
    }
}

fn parameters_of<P: Protocol>() -> Vec<ParameterDoc> {
    let defaults = toml::Table::try_from(P::Config::default()).unwrap_or_default();
    <P::Config as ProtocolConfig>::PARAMETERS
        .iter()
        .map(|(name, doc)| ParameterDoc {
            name,
            default: defaults
                .get(*name)
                .map(|v| v.to_string())
                .unwrap_or_else(|| "(none)".into()),
            doc,
        })
        .collect()
}

fn check_of<P: Protocol>(table: Option<&toml::Table>) -> Result<(), ConsensusError> {
    parse_config::<P::Config>(P::NAME, table).map(|_| ())
}

fn launch_of<P: Adversarial>(l: Launch) -> Result<DriverTask, ConsensusError> {
    let config = parse_config::<P::Config>(P::NAME, l.parameters.consensus.get(P::NAME))?;
    let id = l.context.id;
    let members: Vec<NodeId> = l.context.committee.ids().collect();
    let core = P::new(l.context, config)?;
    let replica = match l.adversary {
        None => Replica::Honest(core),
        Some(adversary) => {
            Replica::Byzantine(Box::new(Byzantine::new(core, id, &members, adversary)))
        }
    };
    Ok(Box::pin(driver::run(
        replica,
        l.driver,
        l.inbound,
        l.certificates,
        l.committed,
    )))
}

fn names() -> String {
    PROTOCOLS
        .iter()
        .map(|e| e.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The protocol called `name`.
pub fn find(name: &str) -> Result<&'static Entry, ConsensusError> {
    PROTOCOLS
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ConsensusError::UnknownProtocol {
            name: name.into(),
            available: names(),
        })
}

/// Check that `protocol` is registered and that every `[consensus.<name>]` table of
/// `parameters` names a registered protocol and parses.
pub fn check(protocol: &str, parameters: &Parameters) -> Result<(), ConsensusError> {
    find(protocol)?;
    for (name, table) in &parameters.consensus {
        find(name)?.check(Some(table))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_protocols_and_parameters_are_refused_naming_the_valid_ones() {
        let e = find("pbft")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("hotstuff"), "{e}");
        let mut p = Parameters::default();
        assert!(check("hotstuff", &p).is_ok());
        let table: toml::Table = toml::from_str("commit_rul = \"two-chain\"").unwrap();
        p.consensus.insert("hotstuff".into(), table);
        let e = check("hotstuff", &p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("commit_rul") && e.contains("commit_rule"), "{e}");
        let table: toml::Table = toml::from_str("commit_rule = \"four-chain\"").unwrap();
        p.consensus.insert("hotstuff".into(), table);
        let e = check("hotstuff", &p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("three-chain") && e.contains("two-chain"), "{e}");
        p.consensus.clear();
        p.consensus.insert("pbft".into(), toml::Table::new());
        assert!(matches!(
            check("hotstuff", &p),
            Err(ConsensusError::UnknownProtocol { .. })
        ));
    }

    #[test]
    fn every_parameter_is_documented_with_its_default() {
        for e in PROTOCOLS {
            // Whatever parameters a core has must show their defaults.
            let docs = e.parameters();
            assert!(
                docs.iter().all(|d| d.default != "(none)"),
                "{}: {docs:?}",
                e.name
            );
        }
        let hotstuff = find("hotstuff").unwrap().parameters();
        assert!(hotstuff
            .iter()
            .any(|d| d.name == "commit_rule" && d.default == "\"three-chain\""));
        // Tusk's only parameter is Twins testing's chosen leaders (empty by default).
        let tusk = find("tusk").unwrap().parameters();
        assert_eq!(tusk.len(), 1);
        assert!(tusk
            .iter()
            .all(|d| d.name == "leaders" && d.default == "[]"));
        assert!(!find("bullshark").unwrap().parameters().is_empty());
    }
}
