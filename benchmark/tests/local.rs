//! `bftlab local` end to end on loopback, briefly: it must commit (not a timing assert).

use std::process::Command;

#[test]
fn bftlab_local_commits_and_writes_a_record() {
    let results = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .args([
            "local",
            "--rate",
            "2000",
            "--duration",
            "4",
            "--warmup",
            "2",
            "--tx-size",
            "128",
        ])
        .arg("--results")
        .arg(results.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "bftlab local failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(results.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(files[0].as_ref().unwrap().path()).unwrap()).unwrap();
    assert!(
        record["consensus"]["tps"].as_f64().unwrap() > 0.0,
        "{record}"
    );
    assert!(
        record["end_to_end"]["latency"]["samples"].as_u64().unwrap() > 0,
        "{record}"
    );
    let blocks = record["blocks_committed"].as_array().unwrap();
    assert_eq!(blocks.len(), 4);
    assert!(blocks.iter().all(|b| b.as_u64().unwrap() > 0), "{record}");
    assert_eq!(record["config"]["nodes"], 4);
}

#[test]
fn user_errors_get_a_clear_message_and_a_non_zero_exit() {
    let bad_flag = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .args(["local", "--nodes", "4", "--faults", "4"])
        .output()
        .unwrap();
    assert!(!bad_flag.status.success());
    assert!(String::from_utf8_lossy(&bad_flag.stderr).contains("live node"));
    let missing = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .args([
            "node",
            "--committee",
            "/nonexistent/committee.toml",
            "--key",
            "/nonexistent/key.toml",
            "--store",
            "/tmp/x",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/committee.toml"));
    let protocol = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .args(["local", "--protocol", "paxos"])
        .output()
        .unwrap();
    assert!(!protocol.status.success());
    let stderr = String::from_utf8_lossy(&protocol.stderr);
    assert!(
        stderr.contains("unknown protocol \"paxos\"") && stderr.contains("hotstuff"),
        "{stderr}"
    );
    let param = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .args(["local", "--param", "commit_rule=four-chain"])
        .output()
        .unwrap();
    assert!(!param.status.success());
    let stderr = String::from_utf8_lossy(&param.stderr);
    assert!(
        stderr.contains("three-chain") && stderr.contains("two-chain"),
        "{stderr}"
    );
    let workers = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .args(["local", "--workers", "0"])
        .output()
        .unwrap();
    assert!(!workers.status.success());
    assert!(String::from_utf8_lossy(&workers.stderr).contains("--workers"));
}

#[test]
fn bftlab_protocols_lists_every_protocol_with_its_parameters() {
    let output = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .arg("protocols")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("hotstuff ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("commit_rule") && stdout.contains("\"three-chain\""),
        "{stdout}"
    );
}

#[test]
fn bftlab_sim_refuses_an_unknown_protocol_or_parameter_naming_the_valid_ones() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../harness/scenarios/happy-n4.toml"
    );
    let unknown = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .args(["sim", scenario, "--protocol", "paxos"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("paxos") && stderr.contains("hotstuff"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.toml");
    let text = std::fs::read_to_string(scenario).unwrap()
        + "\n[parameters.consensus.hotstuff]\ncommit_rul = \"two-chain\"\n";
    std::fs::write(&file, text).unwrap();
    let typo = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .arg("sim")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!typo.status.success());
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert!(
        stderr.contains("commit_rul") && stderr.contains("commit_rule"),
        "{stderr}"
    );
}

#[test]
fn bftlab_sim_judges_a_scenario_and_writes_a_record() {
    let results = tempfile::tempdir().unwrap();
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../harness/scenarios/happy-n4.toml"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .args(["sim", scenario, "--seed", "3", "--results"])
        .arg(results.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("pass"), "{stdout}");
    assert_eq!(std::fs::read_dir(results.path()).unwrap().count(), 1);

    // The same seed in another process: the same committed sequences and the same
    // metrics, byte for byte (only the wall-clock time may differ).
    let again = tempfile::tempdir().unwrap();
    let replay = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .args(["sim", scenario, "--seed", "3", "--results"])
        .arg(again.path())
        .output()
        .unwrap();
    assert!(replay.status.success());
    let runs = |dir: &std::path::Path| {
        let file = std::fs::read_dir(dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let mut runs = record["runs"].take();
        for run in runs.as_array_mut().unwrap() {
            run.as_object_mut().unwrap().remove("wall_seconds");
        }
        serde_json::to_string(&runs).unwrap()
    };
    let (first, second) = (runs(results.path()), runs(again.path()));
    assert!(first.contains("fingerprint") && first.contains("finality_ms"));
    assert_eq!(first, second);
    let bad = Command::new(env!("CARGO_BIN_EXE_bftlab"))
        .args(["sim", scenario, "--seeds", "5..5"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("empty"));
}

/// Every registered protocol replays a seed exactly in another process: the same
/// committed sequences (fingerprints) and metrics.
#[test]
fn every_protocol_replays_a_seed_in_another_process() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../harness/scenarios/crash-one.toml"
    );
    for protocol in consensus::registry::PROTOCOLS.iter().map(|e| e.name) {
        let record = |dir: &std::path::Path| {
            let output = Command::new(env!("CARGO_BIN_EXE_bftlab"))
                .args(["sim", scenario, "--seed", "2", "--protocol", protocol])
                .arg("--results")
                .arg(dir)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{protocol}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let file = std::fs::read_dir(dir)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path();
            let mut record: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
            assert_eq!(record["protocol"], protocol);
            let mut runs = record["runs"].take();
            for run in runs.as_array_mut().unwrap() {
                run.as_object_mut().unwrap().remove("wall_seconds");
            }
            serde_json::to_string(&runs).unwrap()
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (first, second) = (record(a.path()), record(b.path()));
        assert!(first.contains("fingerprint"));
        assert_eq!(first, second, "{protocol}: another process, another run");
    }
}

#[test]
fn bftlab_local_emulates_a_wan_from_a_latency_matrix() {
    let results = tempfile::tempdir().unwrap();
    let matrix = results.path().join("two-regions.csv");
    std::fs::write(&matrix, "region,near,far\nnear,2,200\nfar,200,2\n").unwrap();
    let run = |regions: &str| {
        Command::new(env!("CARGO_BIN_EXE_bftlab"))
            .args([
                "local",
                "--rate",
                "1000",
                "--duration",
                "4",
                "--warmup",
                "2",
            ])
            .args(["--tx-size", "128", "--regions", regions, "--latency-matrix"])
            .arg(&matrix)
            .arg("--results")
            .arg(results.path().join("records"))
            .output()
            .unwrap()
    };
    let output = run("near,near,far,far");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let file = std::fs::read_dir(results.path().join("records"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
    let wan = &record["config"]["wan"];
    assert!(wan["emulated"]
        .as_str()
        .unwrap()
        .contains("in the application"));
    assert_eq!(wan["regions"][3], "far");
    // Any quorum of three spans both regions: no commit can be faster than one 100 ms
    // crossing (a lower bound a slow machine cannot break).
    assert!(
        record["consensus"]["tps"].as_f64().unwrap() > 0.0,
        "{record}"
    );
    assert!(
        record["end_to_end"]["latency"]["p50_ms"].as_f64().unwrap() >= 100.0,
        "{record}"
    );
    assert!(
        record["node_counters"][0]["wan_emulation"]["delayed"]
            .as_u64()
            .unwrap()
            > 0
    );
    // A region the matrix lacks is refused by name.
    let bad = run("near,near,far,moon");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("moon"));
}

#[test]
fn bftlab_sweep_records_every_run_and_resumes() {
    let results = tempfile::tempdir().unwrap();
    let sweep = |resume: bool| {
        let output = Command::new(env!("CARGO_BIN_EXE_bftlab"))
            .args([
                "sweep",
                "--protocols",
                "hotstuff",
                "--rates",
                "2000",
                "--faults",
                "byzantine:garbage",
                "--duration",
                "3",
                "--warmup",
                "1",
                "--tx-size",
                "128",
            ])
            .args(resume.then_some("--resume"))
            .arg("--results")
            .arg(results.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "bftlab sweep failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    sweep(false);
    let journal = std::fs::read_to_string(results.path().join("sweep.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{journal}");
    let line = &lines[0];
    assert_eq!(line["status"], "ok", "{line}");
    assert_eq!(
        line["key"],
        "hotstuff rate=2000 faults=byzantine:garbage repeat=1 nodes=4 workers=1 tx_size=128 duration=3 warmup=1"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(line["record"].as_str().unwrap()).unwrap()).unwrap();
    // The highest node ran the Byzantine behaviour; the honest ones still committed.
    assert_eq!(
        record["config"]["byzantine"],
        serde_json::json!(["garbage"])
    );
    assert_eq!(record["config"]["byzantine_node"], 3);
    let blocks = record["blocks_committed"].as_array().unwrap();
    assert!(
        blocks[..3].iter().all(|b| b.as_u64().unwrap() > 0),
        "{record}"
    );
    // Resumed: nothing left to run, nothing appended.
    let again = sweep(true);
    assert!(again.contains("0 to do"), "{again}");
    let journal = std::fs::read_to_string(results.path().join("sweep.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 1);
}
