//! `cargo xtask bench`: the speed targets, measured (they live here, not in timed tests). Cases,
//! all by default, or those named with `--case`:
//!
//! - `local`: cluster up with the Supabase surface from a warm template (target ≤ 1.5 s), and
//!   `cargo xtask rls` end to end on this repo's tree (target ≤ 3 s; cold cache for reference);
//! - `suite`: `rls` on a Supabase project with ~200 pgTAP tests in 13 files (target < 5 s);
//! - `pooler` and `wan`: through a real session pooler (pgbouncer, session mode, TLS, SCRAM) behind
//!   a delay proxy of ours ([`proxy`]): `stage-rehearse` against the seed runbook's own bash, steps
//!   2–7 exactly as written (`xtask/bench/runbook_steps_2_7.sh`), on the same migrations, each on a
//!   fresh database, counting the connections and round trips each makes ([`wan`]). `pooler` at 0 ms
//!   (target ratio ≤ 0.45), `wan` at `--rtt-ms` (default 30; target ratio ≤ 0.18, ≤ 3 connections:
//!   the tool's one and the Supabase CLI's two `migration list` runs);
//! - `push`: `xtask apply` against `supabase db push` through the same pooler at `--rtt-ms`
//!   ([`push`]; target ratio ≤ 0.35, goal 0.25, on one connection);
//! - `scale`: `stage-rehearse` on 300 migrations with rollbacks and a 600-test contract, on local
//!   (target ≤ 3 s) and through the pooler at `--rtt-ms` (reference);
//! - `scan`: `scan` of a 1 GiB sparse log: throughput (target ≥ 200 MB/s) and peak memory
//!   (constant); of a mixed log, real psql failures among ordinary output (target ≥ 90 MB/s);
//! - `build`: the xtask's cold build, `cargo build -p xtask` into a new target dir on two cores
//!   (target ≤ 45 s).
//!
//! Each figure is the median of several runs in one process, the two sides of a ratio measured
//! alternately in the same rounds; compare ratios, not absolute times, between machines.

mod proxy;
mod push;
mod rounds;
pub mod scale;
mod scan;
mod wan;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::Ctx;
use crate::database::local::LocalCluster;
use crate::exit::{self, Exit};
use crate::process::{self, Env};
use crate::progress;
use crate::tools::server::{self, Server};
use crate::tools::supabase_cli::SupabaseCli;
pub use rounds::{alternate, Remote, Tally};

const RUNS: usize = 5;
const RUNBOOK_BASH: &str = include_str!("../../../bench/runbook_steps_2_7.sh");
const BENCH_PASSWORD: &str = "bench-p@ss/word";
pub const CASES: [&str; 8] = ["build", "scan", "local", "suite", "pooler", "wan", "push", "scale"];

/// What to measure.
pub struct Options {
    pub cases: Vec<String>,
    pub rtt: Duration,
}

/// One line of the report: a figure, its target, and whether it is met.
pub struct Row {
    name: String,
    figure: String,
    target: String,
    met: Option<bool>,
}

impl Row {
    fn time(name: &str, took: Duration, target: Option<Duration>) -> Row {
        Row {
            name: name.into(),
            figure: format!("{} ms", took.as_millis()),
            target: target.map_or("-".into(), |t| format!("<= {} ms", t.as_millis())),
            met: target.map(|t| took <= t),
        }
    }

    fn ratio(name: &str, ratio: f64, target: f64) -> Row {
        Row {
            name: name.into(),
            figure: format!("{ratio:.2}"),
            target: format!("<= {target:.2}"),
            met: Some(ratio <= target),
        }
    }

    fn count(name: &str, n: usize, target: Option<usize>) -> Row {
        Row {
            name: name.into(),
            figure: n.to_string(),
            target: target.map_or("-".into(), |t| format!("<= {t}")),
            met: target.map(|t| n <= t),
        }
    }
}

pub fn run(ctx: &Ctx, options: &Options) -> Result<Exit> {
    for case in &options.cases {
        if !CASES.contains(&case.as_str()) {
            return Err(exit::cannot_run(format!("--case {case}: no such case (cases: {})", CASES.join(", "))));
        }
    }
    let wanted = |case: &str| options.cases.is_empty() || options.cases.iter().any(|c| c == case);
    let scratch = Scratch::new()?;
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let mut rows = Vec::new();
    // First, while this process has no other children: getrusage reports the peak of them all.
    if wanted("scan") {
        let (rate, rss_kb) = scan::bench(&exe, &scratch.0)?;
        rows.push(Row {
            name: "scan of a 1 GiB log".into(),
            figure: format!("{rate:.0} MB/s, {} MB peak", rss_kb / 1024),
            target: ">= 200 MB/s".into(),
            met: Some(rate >= 200.0),
        });
        let rate = scan::mixed(&exe, &scratch.0)?;
        rows.push(Row {
            name: "scan of a mixed log (real failures among psql output)".into(),
            figure: format!("{rate:.0} MB/s"),
            target: ">= 90 MB/s".into(),
            met: Some(rate >= 90.0),
        });
    }
    if wanted("build") {
        let took = scan::cold_build(&scratch.0)?;
        rows.push(Row {
            name: "cold build of the xtask, 2 cores".into(),
            figure: format!("{took:.1} s"),
            target: "<= 45 s".into(),
            met: Some(took <= 45.0),
        });
    }
    let server = server::ensure_server_with_pgtap()?;
    let tree = scratch.0.join("work");
    copy_tree(&ctx.workdir.join("supabase"), &tree.join("supabase"))?;
    if wanted("local") {
        rows.extend(bench_local(&exe, &server, &tree, &scratch.0)?);
    }
    if wanted("suite") {
        rows.push(bench_suite(&exe, &scratch.0)?);
    }
    let cli = || {
        SupabaseCli::find_or_install(&ctx.workdir)
            .context("the Supabase CLI is needed for the pooler benchmarks (npm install --no-save)")
    };
    let over = |rtt: Duration| -> Result<Vec<Row>> { wan::bench(&exe, &server, &cli()?, &tree, &scratch.0, rtt) };
    if wanted("pooler") {
        rows.extend(over(Duration::ZERO)?);
    }
    if wanted("wan") {
        rows.extend(over(options.rtt)?);
    }
    if wanted("push") {
        rows.extend(push::bench(&exe, &server, &cli()?, &tree, &scratch.0, options.rtt)?);
    }
    if wanted("scale") {
        rows.extend(scale::bench(&exe, &server, &scratch.0, options.rtt)?);
    }

    let missed = rows.iter().filter(|r| r.met == Some(false)).count();
    println!("{:<52} {:>22} {:>12}  verdict", "benchmark", "figure", "target");
    for row in &rows {
        let verdict = match row.met {
            Some(true) => "ok",
            Some(false) => "MISSED",
            None => "reference",
        };
        println!("{:<52} {:>22} {:>12}  {verdict}", row.name, row.figure, row.target);
    }
    Ok(if missed == 0 { Exit::Passed } else { Exit::Failed })
}

fn bench_local(exe: &Path, server: &Server, tree: &Path, scratch: &Path) -> Result<Vec<Row>> {
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
    let cold = rls(Some(&scratch.join("cold-cache")))?;
    progress!("bench: cluster up from the warm template, {RUNS} runs");
    drop(LocalCluster::start(server)?); // warm the user's cache
    let mut up = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let cluster = LocalCluster::start(server)?;
        up.push(started.elapsed());
        drop(cluster);
    }
    progress!("bench: `xtask rls` end to end on this repo's tree, {RUNS} runs");
    let mut end_to_end = Vec::new();
    for _ in 0..RUNS {
        end_to_end.push(rls(None)?);
    }
    Ok(vec![
        Row::time("cluster up (warm template)", median(&mut up), Some(Duration::from_millis(1500))),
        Row::time("rls end to end (warm)", median(&mut end_to_end), Some(Duration::from_secs(3))),
        Row::time("rls end to end (cold cache)", cold, None),
    ])
}

fn bench_suite(exe: &Path, scratch: &Path) -> Result<Row> {
    progress!("bench: `xtask rls` on ~200 pgTAP tests in 13 files, {RUNS} runs");
    let sh = Shell::new()?;
    let project = scratch.join("teamdocs");
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
    Ok(Row::time(&format!("rls, {tests} tests in 13 files"), median(&mut suite), Some(Duration::from_secs(5))))
}

/// The step timings of the rehearsal under `tree` (its summary.json), for the progress lines.
pub fn step_times(tree: &Path) -> String {
    let summary = crate::walk::tree(&tree.join("artifacts/ops"))
        .into_iter()
        .flatten()
        .find(|e| e.file_name() == "summary.json")
        .and_then(|e| std::fs::read_to_string(e.path()).ok())
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
    let Some(steps) = summary.as_ref().and_then(|s| s["steps"].as_array().cloned()) else { return "-".into() };
    let parts: Vec<String> =
        steps.iter().map(|s| format!("{} {} ms", s["name"].as_str().unwrap_or("?"), s["duration_ms"])).collect();
    parts.join(", ")
}

/// PATH with the Supabase CLI's bin dir first, as a developer who installed it has.
pub fn search_path(cli: &SupabaseCli) -> String {
    format!("{}:{}", cli.path.parent().expect("a bin dir").display(), std::env::var("PATH").unwrap_or_default())
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

pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A temp dir removed on drop.
struct Scratch(PathBuf);

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

pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
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
