//! Records the commit the `bftlab` binary is built from (`BFTLAB_BUILD_COMMIT`), so a
//! result record names the code that produced it, not whatever is checked out when the
//! record is written. `-dirty` marks a build with uncommitted changes to tracked files.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    println!(
        "cargo:rustc-env=BFTLAB_BUILD_COMMIT={commit}{}",
        if dirty { "-dirty" } else { "" }
    );
    // Rerun when HEAD moves or the index changes (a commit, a checkout, an add), and
    // whenever this crate's or its dependencies' sources change (cargo rebuilds then,
    // and the build script with them).
    for path in ["../.git/HEAD", "../.git/index", "../.git/refs/heads"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
