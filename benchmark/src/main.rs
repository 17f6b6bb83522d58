//! The bftlab command line: keys, nodes, clients, and local benchmarks of a committee.

mod client;
mod keys;
mod local;
mod metrics;
mod node;
mod plot;
mod protocols;
mod remote;
mod report;
mod sequence;
mod sim;
mod sim_sweep;
mod sweep;
mod twins;
mod tx;
mod wan;

use clap::{Parser, Subcommand};

/// Every allocation of the binary (nodes, clients, simulations) goes to mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// bftlab: a research framework for BFT consensus over a Narwhal-style DAG mempool.
#[derive(Parser, Debug)]
#[command(name = "bftlab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a committee, per-node keys and default parameters.
    Keys(keys::KeysArgs),
    /// Run one node from those files.
    Node(node::NodeArgs),
    /// Submit transactions to one node's worker at a fixed rate.
    Client(client::ClientArgs),
    /// Benchmark a committee of node processes on this machine.
    Local(local::LocalArgs),
    /// Run a matrix of local benchmarks (protocols x input rates x fault settings x
    /// repeats), one after another, recording every run.
    Sweep(sweep::SweepArgs),
    /// Draw figures (PNG and SVG) from result records of `local`, `sweep` and `sim`.
    Plot(plot::PlotArgs),
    /// Run scenarios x protocols x seeds in the simulation, several at once (one per
    /// core), recording every run.
    SimSweep(sim_sweep::SimSweepArgs),
    /// Write the cross-protocol comparison page and figures of a folder of records
    /// (results/comparison).
    Report(report::ReportArgs),
    /// Benchmark a committee on a cluster of machines reached over ssh (an inventory).
    Remote(remote::RemoteArgs),
    /// Run a scenario in the deterministic simulation and judge it.
    Sim(sim::SimArgs),
    /// List the consensus protocols and their parameters with defaults.
    Protocols,
    /// Twins testing (Bano et al., OPODIS 2021): generated partitions with twinned
    /// members, of a core alone or of whole simulated nodes (every core, the DAG-native
    /// ones included), judged by agreement.
    Twins(twins::TwinsArgs),
}

/// A reader that stops reading our output (`bftlab report ... | head`) makes `println!`
/// panic on the broken pipe: end quietly instead, with the status a shell gives a
/// process that SIGPIPE ended (128 + 13), as `cat` and friends do. Any other panic goes
/// to the default hook.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("os error 32") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() {
    exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(args) => keys::run(args),
        Command::Node(args) => node::run(args),
        Command::Client(args) => client::run(args),
        Command::Local(args) => local::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Plot(args) => plot::run(args),
        Command::SimSweep(args) => sim_sweep::run(args),
        Command::Report(args) => report::run(args),
        Command::Remote(args) => remote::run(args),
        Command::Sim(args) => sim::run_sim(args),
        Command::Protocols => protocols::run(),
        Command::Twins(args) => twins::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
