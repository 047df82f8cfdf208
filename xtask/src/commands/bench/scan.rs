//! `--case scan`: `xtask scan` of a 1 GiB log, its throughput and peak memory.

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
