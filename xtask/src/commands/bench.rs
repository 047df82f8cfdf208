//! `cargo xtask bench`: the speed targets, measured (they live here, not in timed tests).
//!
//! - cluster up with the Supabase surface, from a warm template: target ≤ 1.5 s;
//! - `cargo xtask rls` end to end on this repo's tree (cluster up, 9 migrations, 41 pgTAP tests,
//!   cluster gone): target ≤ 3 s;
//! - the same with a cold template cache (initdb and the bootstrap included), for reference;
//! - through a real session pooler (pgbouncer, session mode, TLS, SCRAM) in front of a fresh
//!   cluster: `stage-rehearse` against the seed runbook's own bash, steps 2–7 exactly as written
//!   (`xtask/bench/runbook_steps_2_7.sh`), on the same migrations: target ratio ≤ 1;
//! - `scan` of a 1 GiB log: throughput (target ≥ 200 MB/s) and peak memory (constant);
//! - `rls` on a Supabase project with ~200 pgTAP tests in 13 files (the teamdocs fixture and
//!   seven files more in its style), cluster up to cluster gone: target < 5 s.
//!
//! Each figure is the median of several runs in one process on this machine; compare ratios, not
//! absolute times, between machines.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::Ctx;
use crate::exit::Exit;
use crate::process::{self, Env};
use crate::progress;
use crate::target::local::pooler::Pooler;
use crate::target::local::LocalCluster;
use crate::tools::server;
use crate::tools::supabase_cli::SupabaseCli;

const RUNS: usize = 5;
const RUNBOOK_BASH: &str = include_str!("../../bench/runbook_steps_2_7.sh");
const BENCH_PASSWORD: &str = "bench-p@ss/word";

pub fn run(ctx: &Ctx) -> Result<Exit> {
    let scratch = Scratch::new()?;
    // First, while this process has no other children: getrusage reports the peak of them all.
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let (scan_rate, scan_rss_kb) = bench_scan(&exe, &scratch.0)?;
    let server = server::ensure_server_with_pgtap()?;
    let tree = scratch.0.join("work");
    copy_tree(&ctx.workdir.join("supabase"), &tree.join("supabase"))?;
    let sh = Shell::new()?;
    let rls = |cache: Option<&Path>| -> Result<Duration> {
        let mut env = Env::client();
        if let Some(cache) = cache {
            env = env.with("REHEARSAL_PG_CACHE", cache);
        }
        let started = Instant::now();
        let out = process::output(cmd!(sh, "{exe} --workdir {tree} rls --json"), env).context("running xtask rls")?;
        let took = started.elapsed();
        anyhow::ensure!(out.success(), "xtask rls failed during the benchmark:\n{}", out.stderr);
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

    progress!("bench: through pgbouncer (TLS, session mode): the runbook's bash, steps 2-7, against stage-rehearse, 5 runs each");
    let cli = SupabaseCli::find_or_install(&ctx.workdir)
        .context("the Supabase CLI is needed for the pooler benchmark (npm install --no-save)")?;
    let script = scratch.0.join("runbook_steps_2_7.sh");
    std::fs::write(&script, RUNBOOK_BASH)?;
    std::fs::write(tree.join("supabase/rehearsal.toml"), "[staging]\npooler_hosts = [\"127.0.0.1\"]\n")?;
    let path =
        format!("{}:{}", cli.path.parent().expect("a bin dir").display(), std::env::var("PATH").unwrap_or_default());
    let mut bash_times = Vec::new();
    let mut tool_times = Vec::new();
    for round in 0..5 {
        for tool in [false, true] {
            let cluster = LocalCluster::start(&server)?;
            let pooler = Pooler::start(&cluster, BENCH_PASSWORD)?;
            let dsn = pooler.dsn(BENCH_PASSWORD);
            let _ = std::fs::remove_dir_all(tree.join("artifacts"));
            let _ = std::fs::remove_dir_all(tree.join("feedback"));
            let no_plan = scratch.0.join("no-plan.json");
            let cmd = if tool {
                cmd!(sh, "{exe} --workdir {tree} stage-rehearse --target url --plan {no_plan}")
            } else {
                cmd!(sh, "bash {script} {tree}")
            };
            let env = Env::client().with("DATABASE_URL", &dsn).with("PATH", &path);
            let started = Instant::now();
            let out = process::output(cmd, env).context("running a pooler benchmark round")?;
            let took = started.elapsed();
            if tool {
                anyhow::ensure!(out.success(), "stage-rehearse failed through the pooler:\n{}", out.stderr);
                tool_times.push(took);
            } else {
                bash_times.push(took);
            }
            progress!(
                "  round {}: {} {} ms",
                round + 1,
                if tool { "stage-rehearse" } else { "runbook bash  " },
                took.as_millis()
            );
        }
    }
    let (bash, tool) = (median(&mut bash_times), median(&mut tool_times));

    progress!("bench: `xtask rls` on ~200 pgTAP tests in 13 files, {RUNS} runs");
    let project = scratch.0.join("teamdocs");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/teamdocs/supabase"),
        &project.join("supabase"),
    )?;
    let mut tests = 29;
    for n in 0..7 {
        std::fs::write(
            project.join(format!("supabase/tests/database/{}-generated.test.sql", 100 + n)),
            generated_test_file(n),
        )?;
        tests += 25;
    }
    let mut suite = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let out = process::output(cmd!(sh, "{exe} --workdir {project} rls --json"), Env::client())?;
        suite.push(started.elapsed());
        anyhow::ensure!(out.success(), "rls on the {tests}-test project failed:\n{}", out.stdout);
    }
    progress!("  {tests} tests in 13 files");

    let rows = [
        ("cluster up (warm template)", median(&mut up), Some(Duration::from_millis(1500))),
        ("rls end to end (warm)", median(&mut end_to_end), Some(Duration::from_secs(3))),
        ("rls end to end (cold cache)", cold, None),
        ("rls, ~200 tests in 13 files", median(&mut suite), Some(Duration::from_secs(5))),
        ("runbook bash 2-7 via pooler", bash, None),
        ("stage-rehearse via pooler", tool, Some(bash)),
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
    println!(
        "stage-rehearse / runbook bash through the pooler: {:.2} (target <= 1.00)",
        tool.as_secs_f64() / bash.as_secs_f64()
    );
    let scan_ok = scan_rate >= 200.0;
    println!(
        "scan of a 1 GiB log: {scan_rate:.0} MB/s (target >= 200), peak memory {} MB: {}",
        scan_rss_kb / 1024,
        if scan_ok { "ok" } else { "MISSED" }
    );
    if !scan_ok {
        missed += 1;
    }
    Ok(if missed == 0 { Exit::Passed } else { Exit::Failed })
}

/// Write a 1 GiB log of psql output with an error every few hundred lines, time `xtask scan` on it
/// and read its peak resident memory.
fn bench_scan(exe: &Path, dir: &Path) -> Result<(f64, i64)> {
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

/// 25 tests in the fixture's style: sign in as each user, read, try to write across teams.
fn generated_test_file(n: usize) -> String {
    let mut sql = String::from("begin;\nselect plan(25);\n");
    for round in 0..5 {
        sql.push_str(&format!(
            "select tests.authenticate_as('ana@teamdocs.test');\n\
             select results_eq('select title from public.documents', array['Ana''s plan'], 'file {n} round {round}: ana reads her documents');\n\
             select results_eq('select name from public.teams', array['Ana''s team'], 'file {n} round {round}: ana sees her team');\n\
             select throws_ok($$ insert into public.documents (team_id, title) values ('22222222-0000-4000-8000-00000000000b', 'x') $$, '42501', null, 'file {n} round {round}: ana cannot write to ben''s team');\n\
             select tests.authenticate_as('ben@teamdocs.test');\n\
             select results_eq('select title from public.documents', array['Ben''s plan'], 'file {n} round {round}: ben reads his documents');\n\
             select tests.clear_authentication();\n\
             select is_empty('select * from public.documents', 'file {n} round {round}: anon reads nothing');\n"
        ));
    }
    sql.push_str("select * from finish();\nrollback;\n");
    sql
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
    for entry in crate::walk::tree(from) {
        let entry = entry?;
        let target = to.join(entry.path().strip_prefix(from).expect("under the root"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
