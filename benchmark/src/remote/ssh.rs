//! Commands on remote hosts through the system's OpenSSH client, one multiplexed
//! connection per host (ControlMaster), host keys accepted on first use and checked
//! after (`StrictHostKeyChecking=accept-new`: a changed key is refused), never in an
//! interactive prompt (`BatchMode`).

use super::inventory::{Host, Inventory};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// How to reach the inventory's hosts.
pub struct Ssh {
    options: Vec<String>,
    port: Option<u16>,
    /// Holds the control sockets; removed (and the masters stopped) on drop.
    _control: tempfile::TempDir,
    hosts: Vec<String>,
}

/// What a remote command printed and how it ended.
pub struct Ran {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Whether it exited with status 0.
    pub ok: bool,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        Ran {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            ok: o.status.success(),
        }
    }
}

impl Ssh {
    /// Settings for the hosts of `inventory`.
    pub fn new(inventory: &Inventory) -> Result<Self> {
        // Short, so the control socket's path fits a Unix socket address.
        let control = tempfile::Builder::new()
            .prefix("bftlab-ssh-")
            .tempdir_in("/tmp")
            .context("cannot create a directory for ssh control sockets")?;
        let mut options: Vec<String> = [
            "BatchMode=yes",
            "StrictHostKeyChecking=accept-new",
            "ConnectTimeout=10",
            "ServerAliveInterval=5",
            "ServerAliveCountMax=3",
            "ControlMaster=auto",
            "ControlPersist=300",
            "LogLevel=ERROR",
        ]
        .iter()
        .flat_map(|o| ["-o".to_string(), o.to_string()])
        .collect();
        options.extend([
            "-o".into(),
            format!("ControlPath={}/%C", control.path().display()),
        ]);
        if let Some(known) = &inventory.ssh.known_hosts {
            options.extend([
                "-o".into(),
                format!("UserKnownHostsFile={}", inventory.resolve(known).display()),
            ]);
        }
        if let Some(identity) = &inventory.ssh.identity {
            let identity = inventory.resolve(identity);
            if !identity.exists() {
                anyhow::bail!("the ssh identity {} does not exist", identity.display());
            }
            options.extend([
                "-o".into(),
                "IdentitiesOnly=yes".into(),
                "-i".into(),
                identity.display().to_string(),
            ]);
        }
        Ok(Ssh {
            options,
            port: inventory.ssh.port,
            _control: control,
            hosts: inventory.host.iter().map(|h| h.ssh.clone()).collect(),
        })
    }

    fn ssh(&self, host: &Host) -> Command {
        let mut c = Command::new("ssh");
        c.args(&self.options);
        if let Some(p) = self.port {
            c.args(["-p", &p.to_string()]);
        }
        c.arg("--").arg(&host.ssh);
        c.stdin(Stdio::null());
        c
    }

    fn scp(&self) -> Command {
        let mut c = Command::new("scp");
        c.arg("-q").args(&self.options);
        if let Some(p) = self.port {
            c.args(["-P", &p.to_string()]);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Run `script` with `sh` on `host`; its output and status (an ssh failure is an
    /// error).
    pub fn run(&self, host: &Host, script: &str) -> Result<Ran> {
        let output = self
            .ssh(host)
            .arg(script)
            .output()
            .context("cannot run ssh (is OpenSSH's client installed?)")?;
        // 255: ssh itself failed (unreachable host, refused key).
        if output.status.code() == Some(255) {
            anyhow::bail!(
                "ssh to {} ({}) failed: {}",
                host.name,
                host.ssh,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(output.into())
    }

    /// Run `script` on `host` and require status 0.
    pub fn check(&self, host: &Host, script: &str) -> Result<String> {
        let ran = self.run(host, script)?;
        if !ran.ok {
            anyhow::bail!(
                "on {}: `{}` failed: {}",
                host.name,
                script.lines().next().unwrap_or_default(),
                ran.stderr.trim()
            );
        }
        Ok(ran.stdout)
    }

    /// Copy local `files` into the remote directory `dir` of `host`.
    pub fn upload(&self, host: &Host, files: &[PathBuf], dir: &str) -> Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        self.copy_to(host, files, &format!("{dir}/"))
    }

    /// Copy the local `file` to the remote path `to` of `host`.
    pub fn upload_as(&self, host: &Host, file: &Path, to: &str) -> Result<()> {
        self.copy_to(host, &[file.to_path_buf()], to)
    }

    /// `scp` local `sources` to `target` (a remote path) on `host`.
    fn copy_to(&self, host: &Host, sources: &[PathBuf], target: &str) -> Result<()> {
        let status = self
            .scp()
            .args(sources)
            .arg(format!("{}:{target}", host.ssh))
            .status()
            .context("cannot run scp")?;
        if !status.success() {
            anyhow::bail!("copying to {}:{target} failed ({status})", host.name);
        }
        Ok(())
    }

    /// Copy the remote files `pattern` (a glob in a directory of `host`) into the local
    /// directory `into`. Nothing matching is not an error.
    pub fn download(&self, host: &Host, pattern: &str, into: &Path) -> Result<()> {
        std::fs::create_dir_all(into)
            .with_context(|| format!("cannot create {}", into.display()))?;
        let listed = self.run(host, &format!("ls -d {pattern} 2>/dev/null"))?;
        if listed.stdout.trim().is_empty() {
            return Ok(());
        }
        let status = self
            .scp()
            .arg("-r")
            .arg(format!("{}:{pattern}", host.ssh))
            .arg(into)
            .status()
            .context("cannot run scp")?;
        if !status.success() {
            anyhow::bail!("copying {}:{pattern} failed ({status})", host.name);
        }
        Ok(())
    }

    /// The offset of `host`'s clock from this machine's, in milliseconds (remote minus
    /// local), and its uncertainty: NTP's estimate over one ssh session that answers
    /// each line we send with its clock, the best of ten exchanges (half its round
    /// trip bounds the error).
    pub fn clock_offset(&self, host: &Host) -> Result<(f64, f64)> {
        use std::io::{BufRead, BufReader, Write};
        let mut child = self
            .ssh(host)
            .arg("while read -r line; do date +%s%N; done")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run ssh")?;
        let (Some(mut input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            anyhow::bail!("no pipes to ssh");
        };
        let mut output = BufReader::new(output);
        let mut best: Option<(f64, f64)> = None;
        let mut line = String::new();
        for _ in 0..10 {
            line.clear();
            // The round trip on the monotonic clock; the wall clock only for the
            // midpoint (it may step while we measure).
            let sent = std::time::Instant::now();
            let before = crate::tx::now_micros();
            input.write_all(b"t\n").and_then(|_| input.flush())?;
            if output.read_line(&mut line)? == 0 {
                break;
            }
            let rtt_us = sent.elapsed().as_micros() as u64;
            let after = before + rtt_us;
            let Ok(remote_ns) = line.trim().parse::<u128>() else {
                anyhow::bail!("{}: `date +%s%N` printed {line:?}", host.name);
            };
            let remote_ms = remote_ns as f64 / 1e6;
            let middle_ms = (before + after) as f64 / 2_000.0;
            let half_rtt = (after - before) as f64 / 2_000.0;
            if best.is_none_or(|(_, u)| half_rtt < u) {
                best = Some((remote_ms - middle_ms, half_rtt));
            }
        }
        drop(input);
        let _ = child.wait();
        best.with_context(|| format!("{}: no clock sample", host.name))
    }
}

impl Drop for Ssh {
    fn drop(&mut self) {
        // Stop the master connections (they would outlive us by ControlPersist).
        for host in &self.hosts {
            let mut c = Command::new("ssh");
            c.args(&self.options);
            if let Some(p) = self.port {
                c.args(["-p", &p.to_string()]);
            }
            let _ = c
                .args(["-O", "exit", "--", host])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
