//! `cargo xtask bench`: the speed targets, measured (they live here, not in timed tests).
//!
//! - cluster up with the Supabase surface, from a warm template: target ≤ 1.5 s;
//! - `cargo xtask rls` end to end on this repo's tree (cluster up, 9 migrations, 41 pgTAP tests,
//!   cluster gone): target ≤ 3 s;
//! - the same with a cold template cache (initdb and the bootstrap included), for reference.
//!
//! Each figure is the median of several runs in one process on this machine; compare ratios, not
//! absolute times, between machines.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Ctx;
use crate::exit::Exit;
use crate::local::{binaries, LocalCluster};
use crate::progress;

const RUNS: usize = 5;

pub fn run(ctx: &Ctx) -> Result<Exit> {
    let server = binaries::ensure_server_with_pgtap()?;
    let scratch = Scratch::new()?;
    let tree = scratch.0.join("work");
    copy_tree(&ctx.workdir.join("supabase"), &tree.join("supabase"))?;
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let rls = |cache: Option<&Path>| -> Result<Duration> {
        let mut cmd = Command::new(&exe);
        cmd.arg("--workdir").arg(&tree).args(["rls", "--json"]);
        if let Some(cache) = cache {
            cmd.env("REHEARSAL_PG_CACHE", cache);
        }
        let started = Instant::now();
        let out = cmd.output().context("running xtask rls")?;
        let took = started.elapsed();
        anyhow::ensure!(out.status.success(), "xtask rls failed during the benchmark:\n{}", String::from_utf8_lossy(&out.stderr));
        Ok(took)
    };

    progress!("bench: cold template cache (initdb + bootstrap + rls), 1 run");
    let cold = rls(Some(&scratch.0.join("cold-cache")))?;

    progress!("bench: cluster up from the warm template, {RUNS} runs");
    drop(LocalCluster::start(&server)?); // warm the user's cache
    let mut up = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let cluster = LocalCluster::start(&server)?;
        up.push(started.elapsed());
        drop(cluster);
    }

    progress!("bench: `xtask rls` end to end on this repo's tree, {RUNS} runs");
    let mut end_to_end = Vec::new();
    for _ in 0..RUNS {
        end_to_end.push(rls(None)?);
    }

    let rows = [
        ("cluster up (warm template)", median(&mut up), Some(Duration::from_millis(1500))),
        ("rls end to end (warm)", median(&mut end_to_end), Some(Duration::from_secs(3))),
        ("rls end to end (cold cache)", cold, None),
    ];
    let mut missed = 0;
    println!("{:<30} {:>10} {:>10}  verdict", "benchmark", "median", "target");
    for (name, took, target) in rows {
        let verdict = match target {
            Some(t) if took <= t => format!("ok ({:.1}x under)", t.as_secs_f64() / took.as_secs_f64()),
            Some(_) => {
                missed += 1;
                "MISSED".to_string()
            }
            None => "reference".to_string(),
        };
        let target = target.map_or("-".to_string(), |t| format!("{} ms", t.as_millis()));
        println!("{name:<30} {:>7} ms {target:>10}  {verdict}", took.as_millis());
    }
    Ok(if missed == 0 { Exit::Passed } else { Exit::Failed })
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A temp dir removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let path = std::env::temp_dir().join(format!("rehearsal-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
