//! `--case push`: the tool's forward apply (`cargo xtask apply --target url`) against
//! `supabase db push`, on the same migrations, each on a fresh database behind the pooler and the
//! delay proxy, alternating, with the connections each opens. The tool's apply does more than the
//! push (the lock, the lock impact of every file, the advisors, a summary and its transcripts).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::{search_path, Remote, Row, Tally};
use crate::process::{self, Env};
use crate::progress;
use crate::tools::server::Server;
use crate::tools::supabase_cli::SupabaseCli;

pub fn bench(
    exe: &Path,
    server: &Server,
    cli: &SupabaseCli,
    tree: &Path,
    scratch: &Path,
    rtt: Duration,
) -> Result<Vec<Row>> {
    let rounds = 3;
    let ms = rtt.as_millis();
    progress!(
        "bench: through pgbouncer at {ms} ms round trip: `supabase db push` against `xtask apply`, {rounds} runs each"
    );
    let sh = Shell::new()?;
    std::fs::write(tree.join("supabase/rehearsal.toml"), "[staging]\npooler_hosts = [\"127.0.0.1\"]\n")?;
    let path = search_path(cli);
    let supabase = &cli.exec;
    let no_plan = scratch.join("no-plan.json");
    let (mut push, mut apply) = (Tally::default(), Tally::default());
    for round in 0..rounds {
        for tool in [false, true] {
            let remote = Remote::start(server, rtt)?;
            let _ = std::fs::remove_dir_all(tree.join("artifacts"));
            let _ = std::fs::remove_dir_all(tree.join("feedback"));
            let dsn = remote.dsn();
            let cmd = if tool {
                cmd!(sh, "{exe} --workdir {tree} apply --target url --plan {no_plan}")
            } else {
                let args = cli.dsn_args(&dsn);
                cmd!(sh, "{supabase} db push --yes {args...} --workdir {tree}")
            };
            let env = Env::client().with("DATABASE_URL", &dsn).with("PATH", &path);
            let started = Instant::now();
            let out = process::output(cmd, env).context("running a push benchmark round")?;
            let took = started.elapsed();
            let (conns, trips) = (remote.proxy.connections(), remote.proxy.round_trips());
            let who = if tool { "xtask apply" } else { "supabase db push" };
            anyhow::ensure!(out.success(), "{who} failed through the pooler:\n{}{}", out.stdout, out.stderr);
            if tool {
                progress!("  steps: {}", super::step_times(tree));
            }
            (if tool { &mut apply } else { &mut push }).add(took, conns, trips);
            progress!(
                "  round {}: {who:<16} {} ms, {conns} connections, {trips} round trips",
                round + 1,
                took.as_millis()
            );
        }
    }
    let mut rows = push.rows(&format!("supabase db push, pooler at {ms} ms RTT"), None);
    // The bound: at most 0.35 (goal 0.25), on one connection of the tool's.
    rows.extend(apply.rows(&format!("xtask apply, pooler at {ms} ms RTT"), Some(1)));
    rows.push(Row::ratio(
        &format!("xtask apply / supabase db push at {ms} ms"),
        apply.median().as_secs_f64() / push.median().as_secs_f64(),
        0.35,
    ));
    Ok(rows)
}
