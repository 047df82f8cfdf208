//! `cargo xtask rls`: the RLS contract alone. On `local`: a fresh throwaway cluster, every
//! migration applied in version order (step 4), `supabase/seed.sql`, then the contract (step 6),
//! with the logs in a new rehearsal dir and the result read from them.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::Ctx;
use crate::artifacts::{write_atomic, RehearsalDir};
use crate::clock::Utc;
use crate::exit::{self, Exit};
use crate::local::{binaries, LocalCluster};
use crate::redact::Redactor;
use crate::report;
use crate::steps::{apply, rls, Db};
use crate::summary::{MigrationRow, Summary, Target};
use crate::tree::{self, Tree, CONTRACT, SEED, TESTS};
use crate::{findings, progress};

pub const APPLY_LOG: &str = "migration_apply.log";
pub const RLS_LOG: &str = "rls_contract.log";

pub fn run(ctx: &Ctx, superuser_postgres: bool, opts: &crate::cmd::session::Options) -> Result<Exit> {
    if let Some(kind @ ("staging" | "url")) = opts.target.as_deref() {
        return remote(ctx, kind, opts);
    }
    let started = Utc::now();
    progress!("target: local (a throwaway PostgreSQL cluster with the Supabase surface; the default of `rls`, the check before a PR)");
    let contract = tree::contract_files(&ctx.workdir)?;
    if contract.is_empty() {
        let message = format!(
            "halted: no RLS contract ({CONTRACT}) and no {TESTS}/ under {}: escalate to the manager (runbook §6: \
             if the contract file is missing, halt)",
            ctx.workdir.display()
        );
        if ctx.json {
            println!("{}", json!({"schema_version": 1, "outcome": "halted", "blockers": [message]}));
        }
        return Err(exit::halt(message));
    }
    let tree = Tree::load(&ctx.workdir)?;
    let server = binaries::ensure_server_with_pgtap()?;
    let psql = binaries::find_client("psql")?;
    let rehearsal = RehearsalDir::create(&ctx.workdir, &started)?;

    let clock = Instant::now();
    let cluster = LocalCluster::start(&server)?;
    if superuser_postgres {
        cluster.make_postgres_superuser()?;
    }
    progress!(
        "cluster: PostgreSQL {} on 127.0.0.1:{} up in {} ms",
        server.major,
        cluster.port(),
        clock.elapsed().as_millis()
    );
    let db = Db {
        psql,
        dsn: cluster.dsn(),
        redactor: Redactor::new(),
        workdir: ctx.workdir.clone(),
        settings: Vec::new(),
        lock_timeout: None,
    };

    let apply_log = rehearsal.rel_file(APPLY_LOG);
    let mut log = rehearsal.log(APPLY_LOG)?;
    let mut rows = Vec::new();
    let mut findings = Vec::new();
    for migration in &tree.migrations {
        let applied = apply::apply(&db, migration, true, &mut log, &apply_log)?;
        progress!("{}", applied.progress_line("apply", migration));
        findings.extend(applied.findings.iter().cloned());
        let mut row = MigrationRow::new(migration, None);
        row.apply = Some(applied);
        rows.push(row);
    }

    // The security advisors, after the forward apply.
    let applied: Vec<_> = rows.iter().filter(|r| r.applied()).map(|r| r.migration.clone()).collect();
    let advised = crate::steps::advisors::run(&db, &applied)?;
    progress!("advisors: {} finding(s)", advised.len());
    findings.extend(advised);
    if ctx.workdir.join(SEED).is_file() {
        // As `supabase db reset` does: the seed after the migrations, before the tests.
        use std::io::Write;
        writeln!(log, "==> {SEED}")?;
        let out = db.psql().args(["-f", SEED]).run(&db.redactor, Some(&mut log))?;
        if !out.success() {
            writeln!(log, "!! failure: {SEED}")?;
            findings.extend(findings::scan(&out.text, Some(&apply_log)));
        }
        writeln!(log)?;
        progress!("seed {SEED} .. {}", if out.success() { "ok" } else { "FAILED" });
    }

    let rls_log = rehearsal.rel_file(RLS_LOG);
    let result = rls::run(&db, &contract, &mut rehearsal.log(RLS_LOG)?, &rls_log)?;
    for f in &result.files {
        progress!("rls {} .. {} of {} passed", f.file, f.report.passed, f.report.planned.unwrap_or(f.report.ran));
    }
    drop(cluster);
    findings.extend(result.errors().into_iter().cloned());

    let failed = rows.iter().filter(|r| r.apply.as_ref().is_some_and(|a| !a.ok)).count();
    let mut next_actions = Vec::new();
    if failed > 0 {
        next_actions.push(format!("fix the {failed} failed migration(s) named above, then re-run `cargo xtask rls`"));
    }
    if !result.is_clean() {
        next_actions.push(format!("read {rls_log}: every RLS test must pass before the rehearsal on staging"));
    }
    let mut summary = Summary::new(
        Target { kind: "local", host: "127.0.0.1".into(), database: "postgres".into() },
        started.rfc3339(),
        &rehearsal.rel,
    );
    summary.migrations = rows;
    summary.rls = Some(result);
    summary.findings = findings;
    summary.next_actions = next_actions;
    summary.warnings =
        tree.orphan_rollbacks.iter().map(|f| format!("{f} rolls back no migration in the tree")).collect();
    summary.logs = vec![("apply".into(), apply_log), ("RLS contract".into(), rls_log)];
    hand_off(ctx, &rehearsal, summary)
}

/// Write summary.json into the rehearsal dir and print it (`--json`) or the one screen.
fn hand_off(ctx: &Ctx, rehearsal: &RehearsalDir, mut summary: Summary) -> Result<Exit> {
    summary.finished_at = Utc::now().rfc3339();
    let value = summary.to_json();
    let json = serde_json::to_string_pretty(&value)?;
    write_atomic(&rehearsal.file("summary.json"), format!("{json}\n").as_bytes())?;
    if ctx.json {
        println!("{json}");
    } else {
        print!("{}", report::screen(&value));
    }
    Ok(summary.outcome().exit())
}

/// `rls --target staging|url`: the contract alone on the target (runbook step 6), its DSN guarded
/// as for a rehearsal; nothing is applied.
fn remote(ctx: &Ctx, kind: &str, opts: &crate::cmd::session::Options) -> Result<Exit> {
    let started = Utc::now();
    let config = crate::config::Config::load(&ctx.workdir)?;
    let (kind, why) = crate::target::choose(Some(kind), &ctx.workdir, &config);
    progress!("target: {} ({why}; the contract alone, nothing is applied)", kind.as_str());
    let contract = tree::contract_files(&ctx.workdir)?;
    if contract.is_empty() {
        return Err(exit::halt(format!(
            "halted: no RLS contract ({CONTRACT}) and no {TESTS}/: escalate to the manager (runbook §6)"
        )));
    }
    let target = crate::target::open(kind, &ctx.workdir, &config, opts.db_url.as_deref(), false)?;
    let psql = binaries::find_client("psql")?;
    let rehearsal = RehearsalDir::create(&ctx.workdir, &started)?;
    let db = Db {
        psql,
        dsn: target.dsn.clone(),
        redactor: target.redactor.clone(),
        workdir: ctx.workdir.clone(),
        settings: opts.settings.clone(),
        lock_timeout: opts.lock_timeout.clone(),
    };
    let rls_log = rehearsal.rel_file(RLS_LOG);
    let result = rls::run(&db, &contract, &mut rehearsal.log(RLS_LOG)?, &rls_log)?;
    progress!("rls: {} of {} planned passed", result.passed(), result.planned());
    let findings = result.errors().into_iter().cloned().collect();
    let mut summary = Summary::new(target.summary(), started.rfc3339(), &rehearsal.rel);
    if !result.is_clean() {
        summary.next_actions.push(format!("read {rls_log}: every RLS test must pass"));
    }
    summary.rls = Some(result);
    summary.findings = findings;
    summary.logs = vec![("RLS contract".into(), rls_log)];
    hand_off(ctx, &rehearsal, summary)
}
