//! The `scale` case: `stage-rehearse` on a generated tree of 300 migrations, each with its
//! rollback, and a 600-test RLS contract: on local (target ≤ 3 s end to end) and through the
//! pooler at the given round trip (a reference figure, with its connection count).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::{median, Remote, Row};
use crate::process::{self, Env};
use crate::progress;
use crate::tools::server::Server;

pub const MIGRATIONS: usize = 300;
const RUNS: usize = 3;

/// Write the tree under `dir`: migrations as teams write them (a table, its index, RLS and a
/// policy; every tenth also a function and a view), rollbacks that undo them, and a contract with
/// two tests per migration.
pub fn write_tree(dir: &Path) -> Result<()> {
    let (migrations, rollbacks) = (dir.join("supabase/migrations"), dir.join("supabase/migrations.backup"));
    std::fs::create_dir_all(&migrations)?;
    std::fs::create_dir_all(&rollbacks)?;
    let mut contract = format!("begin;\nselect plan({});\n", 2 * MIGRATIONS);
    for i in 1..=MIGRATIONS {
        let version = format!("20250101{i:06}");
        let t = format!("public.items_{i:03}");
        let mut sql = format!(
            "-- Items of batch {i}.\ncreate table if not exists {t} (\n  id bigint generated always as identity primary key,\n  \
             owner_id uuid not null default auth.uid(),\n  label text not null,\n  created_at timestamptz not null default now()\n);\n\
             create index if not exists items_{i:03}_owner_idx on {t} (owner_id);\n\
             alter table {t} enable row level security;\n\
             create policy \"owners read items {i}\" on {t} for select to authenticated using (owner_id = (select auth.uid()));\n"
        );
        let mut rollback = format!("-- Rolls back {version}_items_{i:03}.sql.\n");
        if i % 10 == 0 {
            sql.push_str(&format!(
                "create or replace function public.items_{i:03}_count() returns bigint language sql stable \
                 set search_path = '' as $$ select count(*) from {t} $$;\n\
                 create or replace view public.items_{i:03}_mine with (security_invoker = true) as select id, label from {t};\n"
            ));
            rollback.push_str(&format!(
                "drop view if exists public.items_{i:03}_mine;\ndrop function if exists public.items_{i:03}_count();\n"
            ));
        }
        rollback.push_str(&format!("drop table if exists {t};\n"));
        std::fs::write(migrations.join(format!("{version}_items_{i:03}.sql")), sql)?;
        std::fs::write(rollbacks.join(format!("{version}_items_{i:03}_rollback.sql")), rollback)?;
        contract.push_str(&format!(
            "select has_table('public', 'items_{i:03}', 'items_{i:03} exists');\n\
             select ok((select relrowsecurity from pg_class where oid = '{t}'::regclass), 'items_{i:03} has RLS on');\n"
        ));
    }
    contract.push_str("select * from finish();\nrollback;\n");
    std::fs::write(dir.join("supabase/rls_tests.sql"), contract)?;
    std::fs::write(dir.join("supabase/rehearsal.toml"), "[staging]\npooler_hosts = [\"127.0.0.1\"]\n")?;
    Ok(())
}

pub fn bench(exe: &Path, server: &Server, scratch: &Path, rtt: Duration) -> Result<Vec<Row>> {
    let tree = scratch.join("scale");
    write_tree(&tree).context("writing the 300-migration tree")?;
    let sh = Shell::new()?;
    let no_plan = scratch.join("no-plan.json");
    let run = |remote: Option<&Remote>| -> Result<(Duration, usize)> {
        let _ = std::fs::remove_dir_all(tree.join("artifacts"));
        let _ = std::fs::remove_dir_all(tree.join("feedback"));
        let (cmd, env) = match remote {
            Some(r) => (
                cmd!(sh, "{exe} --workdir {tree} stage-rehearse --target url --plan {no_plan}"),
                Env::client().with("DATABASE_URL", r.dsn()),
            ),
            None => (cmd!(sh, "{exe} --workdir {tree} stage-rehearse --target local --plan {no_plan}"), Env::client()),
        };
        let started = Instant::now();
        let out = process::output(cmd, env)?;
        let took = started.elapsed();
        anyhow::ensure!(out.success(), "stage-rehearse on 300 migrations failed:\n{}{}", out.stdout, out.stderr);
        Ok((took, remote.map_or(0, |r| r.proxy.connections())))
    };
    progress!("bench: stage-rehearse on {MIGRATIONS} migrations and {} tests, local, {RUNS} runs", 2 * MIGRATIONS);
    let mut local = Vec::new();
    for _ in 0..RUNS {
        local.push(run(None)?.0);
        progress!("  {} ms; steps: {}", local.last().expect("one run").as_millis(), super::step_times(&tree));
    }
    let ms = rtt.as_millis();
    progress!("bench: the same through the pooler at {ms} ms round trip, 1 run");
    let remote = Remote::start(server, rtt)?;
    let (wan, conns) = run(Some(&remote))?;
    progress!("  {} ms, {conns} connections; steps: {}", wan.as_millis(), super::step_times(&tree));
    Ok(vec![
        Row::time(
            &format!("stage-rehearse, {MIGRATIONS} migrations, local"),
            median(&mut local),
            Some(Duration::from_secs(3)),
        ),
        Row::time(&format!("stage-rehearse, {MIGRATIONS} migrations, {ms} ms RTT"), wan, None),
        Row::count(&format!("  its connections at {ms} ms"), conns, Some(3)),
    ])
}
