//! The `pooler` and `wan` cases: `stage-rehearse` against the seed runbook's own bash (steps 2–7
//! as written, `xtask/bench/runbook_steps_2_7.sh`) through the staging-like pooler, at 0 ms and at
//! `--rtt-ms`, each on a fresh database, alternately, with the connections and round trips each
//! makes.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use xshell::{cmd, Shell};

use super::{alternate, search_path, Row, RUNBOOK_BASH, RUNS};
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
    let no_plan = scratch.join("no-plan.json");
    let command = |tool: bool, _: &str| {
        if tool {
            cmd!(sh, "{exe} --workdir {tree} stage-rehearse --target url --plan {no_plan}")
        } else {
            cmd!(sh, "bash {script} {tree}")
        }
    };
    // The bash goes on past a failing step, as the runbook's own does: only the tool must pass.
    let names = ["runbook bash", "stage-rehearse"];
    let (bash, rehearsal) = alternate(server, (tree, &search_path(cli)), (rtt, rounds), (names, false), &command)?;
    let ratio = rehearsal.median().as_secs_f64() / bash.median().as_secs_f64();
    // The bounds: at 30 ms at most 0.18 of the bash, at 0 ms at most 0.45; the tool's own
    // one connection and the CLI's two `migration list` runs.
    let (target, conn_target) = if rtt.is_zero() { (0.45, None) } else { (0.18, Some(3)) };
    let mut rows = bash.rows(&format!("runbook bash 2-7, pooler at {ms} ms RTT"), None);
    rows.extend(rehearsal.rows(&format!("stage-rehearse, pooler at {ms} ms RTT"), conn_target));
    rows.push(Row::ratio(&format!("stage-rehearse / runbook bash at {ms} ms"), ratio, target));
    Ok(rows)
}
