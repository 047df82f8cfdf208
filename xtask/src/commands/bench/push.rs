//! `--case push`: the tool's forward apply (`cargo xtask apply --target url`) against
//! `supabase db push`, on the same migrations, each on a fresh database behind the pooler and the
//! delay proxy, alternating, with the connections each opens. The tool's apply does more than the
//! push (the lock, the lock impact of every file, the advisors, a summary and its transcripts).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use xshell::{cmd, Shell};

use super::{alternate, search_path, Row};
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
    let (supabase, no_plan) = (&cli.exec, scratch.join("no-plan.json"));
    let command = |tool: bool, dsn: &str| {
        if tool {
            cmd!(sh, "{exe} --workdir {tree} apply --target url --plan {no_plan}")
        } else {
            let args = cli.dsn_args(dsn);
            cmd!(sh, "{supabase} db push --yes {args...} --workdir {tree}")
        }
    };
    let names = ["supabase db push", "xtask apply"];
    let (push, apply) = alternate(server, (tree, &search_path(cli)), (rtt, rounds), (names, true), &command)?;
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
