//! The `pooler` and `wan` cases: `stage-rehearse` against the seed runbook's own bash (steps 2–7
//! as written, `xtask/bench/runbook_steps_2_7.sh`) through the staging-like pooler, at 0 ms and at
//! `--rtt-ms`, each on a fresh database, alternately, with the connections and round trips each
//! makes.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::{search_path, step_times, Remote, Row, Tally, RUNBOOK_BASH, RUNS};
use crate::process::{self, Env};
use crate::progress;
use crate::tools::server::Server;
use crate::tools::supabase_cli::SupabaseCli;

/// Runs of the rehearsal and of the runbook's bash, alternately, each on a fresh database.
pub fn bench(
    exe: &Path,
    server: &Server,
    cli: &SupabaseCli,
    tree: &Path,
    scratch: &Path,
    rtt: Duration,
) -> Result<Vec<Row>> {
    let rounds = if rtt.is_zero() { RUNS } else { 3 };
    let ms = rtt.as_millis();
    progress!("bench: through pgbouncer (TLS, session mode) at {ms} ms round trip: the runbook's bash, steps 2-7, against stage-rehearse, {rounds} runs each");
    let sh = Shell::new()?;
    let script = scratch.join("runbook_steps_2_7.sh");
    std::fs::write(&script, RUNBOOK_BASH)?;
    std::fs::write(tree.join("supabase/rehearsal.toml"), "[staging]\npooler_hosts = [\"127.0.0.1\"]\n")?;
    let path = search_path(cli);
    let (mut bash, mut rehearsal) = (Tally::default(), Tally::default());
    for round in 0..rounds {
        for tool in [false, true] {
            let remote = Remote::start(server, rtt)?;
            let _ = std::fs::remove_dir_all(tree.join("artifacts"));
            let _ = std::fs::remove_dir_all(tree.join("feedback"));
            let no_plan = scratch.join("no-plan.json");
            let cmd = if tool {
                cmd!(sh, "{exe} --workdir {tree} stage-rehearse --target url --plan {no_plan}")
            } else {
                cmd!(sh, "bash {script} {tree}")
            };
            let env = Env::client().with("DATABASE_URL", remote.dsn()).with("PATH", &path);
            let started = Instant::now();
            let out = process::output(cmd, env).context("running a pooler benchmark round")?;
            let took = started.elapsed();
            let (conns, trips) = (remote.proxy.connections(), remote.proxy.round_trips());
            if tool {
                anyhow::ensure!(out.success(), "stage-rehearse failed through the pooler:\n{}", out.stderr);
                progress!("  steps: {}", step_times(tree));
            }
            let side = if tool { &mut rehearsal } else { &mut bash };
            side.add(took, conns, trips);
            progress!(
                "  round {}: {} {} ms, {conns} connections, {trips} round trips",
                round + 1,
                if tool { "stage-rehearse" } else { "runbook bash  " },
                took.as_millis()
            );
        }
    }
    let ratio = rehearsal.median().as_secs_f64() / bash.median().as_secs_f64();
    // The bounds: at 30 ms at most 0.18 of the bash, at 0 ms at most 0.45; the tool's own
    // one connection and the CLI's two `migration list` runs.
    let (target, conn_target) = if rtt.is_zero() { (0.45, None) } else { (0.18, Some(3)) };
    let mut rows = bash.rows(&format!("runbook bash 2-7, pooler at {ms} ms RTT"), None);
    rows.extend(rehearsal.rows(&format!("stage-rehearse, pooler at {ms} ms RTT"), conn_target));
    rows.push(Row::ratio(&format!("stage-rehearse / runbook bash at {ms} ms"), ratio, target));
    Ok(rows)
}
