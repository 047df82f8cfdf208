//! `--case scan`: `xtask scan` of a mixed log (real psql failures among ordinary migration output)
//! and of a sparse 1 GiB one: throughput, and the peak memory of the large one.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::process::{self, Env};
use crate::progress;

/// Write a 1 GiB log of psql output with an error every few hundred lines, time `xtask scan` on it
/// and read its peak resident memory.
pub fn bench(exe: &Path, dir: &Path) -> Result<(f64, i64)> {
    use std::io::Write;
    progress!("bench: scan of a 1 GiB log");
    let block = "==> supabase/migrations/20251011090000_inventory_bundle.sql\nCREATE TABLE\nCREATE INDEX\nALTER TABLE\nCREATE POLICY\n\
        psql:supabase/rls_tests.sql:12: NOTICE:  42P07: relation \"t\" already exists, skipping\n ok 14 - alice sees only her inventory\n\n"
        .repeat(200);
    let chunk = format!("{block}psql:supabase/migrations/20251019004500_x.sql:12: ERROR:  42P07: relation \"x\" already exists\nLOCATION:  heap_create_with_catalog, heap.c:1146\n!! failure: supabase/migrations/x.sql\n\n");
    let path = dir.join("big.log");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut written = 0u64;
    while written < 1 << 30 {
        file.write_all(chunk.as_bytes())?;
        written += chunk.len() as u64;
    }
    file.flush()?;
    drop(file);
    let sh = Shell::new()?;
    let started = Instant::now();
    let out = process::output(cmd!(sh, "{exe} scan {path}"), Env::client()).context("running xtask scan")?;
    let took = started.elapsed();
    anyhow::ensure!(out.code == Some(1), "scan of the benchmark log did not report its findings");
    // The scan is this process's first child, so the largest resident set of its children is its own.
    // SAFETY: getrusage into a local we own.
    let rss = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    };
    let _ = std::fs::remove_file(&path);
    Ok((written as f64 / 1e6 / took.as_secs_f64(), rss))
}

/// Real psql output of nine migration files on PostgreSQL 15 (`VERBOSITY=verbose`): five failures
/// of four classes among notices, command tags and context lines.
const MIXED: &str = include_str!("../../../test_data/psql_mixed_migrations.log");

/// The mixed log repeated to 256 MiB, `xtask scan` timed on it: MB/s (every finding printed, as
/// a user reads them).
pub fn mixed(exe: &Path, dir: &Path) -> Result<f64> {
    use std::io::Write;
    progress!("bench: scan of a mixed log (real psql failures among ordinary output), 256 MiB");
    let path = dir.join("mixed.log");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut written = 0u64;
    while written < 256 << 20 {
        file.write_all(MIXED.as_bytes())?;
        written += MIXED.len() as u64;
    }
    file.flush()?;
    drop(file);
    let sh = Shell::new()?;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let out = process::output(cmd!(sh, "{exe} scan {path}"), Env::client()).context("running xtask scan")?;
        best = best.min(started.elapsed().as_secs_f64());
        anyhow::ensure!(out.code == Some(1), "scan of the mixed log did not report its findings");
    }
    let _ = std::fs::remove_file(&path);
    Ok(written as f64 / 1e6 / best)
}

/// `cargo build -p xtask` from nothing (its dependencies fetched), on two cores when `taskset`
/// is there: the seconds it takes.
pub fn cold_build(dir: &Path) -> Result<f64> {
    progress!("bench: cold build of the xtask (cargo build -p xtask, a new target dir), 1 run");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in its workspace").to_path_buf();
    let target = dir.join("cold-build");
    let sh = Shell::new()?;
    sh.change_dir(&workspace);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    let out = if which::which("taskset").is_ok() {
        process::output(
            cmd!(sh, "taskset -c 0,1 {cargo} build -p xtask --locked --offline -q"),
            Env::client().with("CARGO_TARGET_DIR", &target),
        )
    } else {
        process::output(
            cmd!(sh, "{cargo} build -p xtask --locked --offline -q"),
            Env::client().with("CARGO_TARGET_DIR", &target),
        )
    }
    .context("running cargo build")?;
    let took = started.elapsed().as_secs_f64();
    anyhow::ensure!(out.success(), "the cold build failed:\n{}", out.stderr);
    let _ = std::fs::remove_dir_all(&target);
    Ok(took)
}
