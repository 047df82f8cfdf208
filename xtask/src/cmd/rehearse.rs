//! `cargo xtask stage-rehearse`: the runbook's steps 0–8, in order, into one rehearsal dir.
//!
//! Each step is called here and what it returns is collected into a [`Rehearsal`]; an interrupt
//! part way still writes a `halted` summary and the plan's real state from what was collected.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use super::Ctx;
use crate::artifacts::{write_atomic, write_manifest, RehearsalDir};
use crate::clock::Utc;
use crate::config::Config;
use crate::exit::{self, Exit};
use crate::local::binaries;
use crate::plan::{self, Molecule, Plan, MAX_ATTEMPTS};
use crate::steps::rollback::RolledBack;
use crate::steps::{advisors, apply, connectivity, inventory, rls, rollback, Db};
use crate::summary::{MigrationRow, Summary};
use crate::supabase_cli::SupabaseCli;
use crate::target::{self, Kind};
use crate::tree::{self, Migration, Tree, CONTRACT, SEED, TESTS};
use crate::{feedback, findings, progress, report, schema};

pub const APPLY_LOG: &str = "migration_apply.log";
pub const ROLLBACK_LOG: &str = "migration_rollback.log";
pub const RLS_LOG: &str = "rls_contract.log";

/// The flags of `stage-rehearse` (and of the single-step commands built on it).
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub target: Option<String>,
    pub db_url: Option<String>,
    pub molecules: Vec<String>,
    pub plan: Option<PathBuf>,
    pub no_atomic: bool,
    pub fail_fast: bool,
    pub settings: Vec<String>,
}

pub fn run(ctx: &Ctx, opts: &Options) -> Result<Exit> {
    let started = Utc::now();
    let w = &ctx.workdir;
    let config = Config::load(w)?;
    let (kind, why) = target::choose(opts.target.as_deref(), w, &config);
    progress!("target: {} ({why})", kind.as_str());

    // Refuse bad input before anything is written or touched.
    let tree = Tree::load(w)?;
    let contract = tree::contract_files(w)?;
    if contract.is_empty() {
        let message = format!("halted: no RLS contract ({CONTRACT}) and no {TESTS}/: escalate to the manager (runbook §6)");
        if ctx.json {
            println!("{}", json!({"schema_version": 1, "outcome": "halted", "blockers": [message]}));
        }
        return Err(exit::halt(message));
    }
    let plan_path = Plan::path(opts.plan.as_deref());
    let mut plan = Plan::load(&plan_path)?;
    let molecules = match &plan {
        Some(p) => p.select(&opts.molecules, &tree.migrations)?,
        None if !opts.molecules.is_empty() => {
            return Err(exit::cannot_run(format!("--molecule needs a data plan; none at {}", plan_path.display())))
        }
        None => Vec::new(),
    };
    if let Some(spent) = molecules.iter().find(|m| m.attempt > MAX_ATTEMPTS) {
        let plan = plan.as_mut().expect("molecules come from a plan");
        plan.set(&spent.id, "blocked", None, &[]);
        plan.save()?;
        return Err(exit::halt(format!(
            "molecule `{}` has used its {MAX_ATTEMPTS} attempts; marked blocked in {}: escalate to the manager",
            spent.id,
            plan_path.display()
        )));
    }
    let psql = binaries::find_client("psql")?;
    let pg_dump = binaries::find_client("pg_dump")?;
    let cli = SupabaseCli::find_or_install(w);

    // Step 0: alignment. Step 1: environment (the target, its DSN guarded and never rewritten).
    let rehearsal = RehearsalDir::create(w, &started)?;
    let log_root = format!("artifacts/ops/{}", started.date());
    let target = target::open(kind, w, &config, opts.db_url.as_deref())?;
    let db = Db { psql, dsn: target.dsn.clone(), redactor: target.redactor.clone(), workdir: w.clone(), settings: opts.settings.clone() };
    let planned = planned_commands(&db, cli.as_ref());
    let objective = match molecules.is_empty() {
        true => format!("Rehearse every pending migration on {} (apply, rollback, re-apply, RLS contract).", kind.as_str()),
        false => format!(
            "Rehearse molecule(s) {} on {} (apply, rollback, re-apply, RLS contract).",
            molecules.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", "),
            kind.as_str()
        ),
    };
    let (created, doc_warnings) = feedback::ensure_header(w, &started.date(), &objective, &planned, &rehearsal.rel)?;
    progress!("step 0 alignment: {} {}", feedback::path(&started.date()), if created { "header created" } else { "exists; header kept" });
    let mut r = new_summary(&target.summary(), &started, &rehearsal.rel);
    r.warnings.extend(doc_warnings);
    r.warnings.extend(tree.orphan_rollbacks.iter().map(|f| format!("{f} rolls back no migration in the tree")));

    // Step 2: connectivity, into the day's folder (moved into the rehearsal dir in step 7).
    let conn_rel = format!("{log_root}/ipv4_pooler_check_{}.log", Utc::now().hhmmss());
    let conn = connectivity::check(&db, &w.join(&conn_rel), &conn_rel)?;
    if !conn.reached {
        let why = conn.findings.first().map_or("no result row".to_string(), |f| format!("{}: {}\n  what to do: {}", f.class, f.message, f.hint));
        return Err(exit::cannot_run(format!("step 2 connectivity: the database is unreachable ({conn_rel})\n  {why}")));
    }
    progress!("step 2 connectivity: {} at {} ({})", conn.database.as_deref().unwrap_or("?"), conn.server_addr.as_deref().unwrap_or("?"), if conn.ipv4() { "IPv4" } else { "NOT IPv4" });
    if !conn.ipv4() {
        r.blockers.push(format!(
            "the server address {} is not IPv4: staging must go through the IPv4 session pooler",
            conn.server_addr.as_deref().unwrap_or("(none)")
        ));
    }

    // Step 3: inventory.
    let pre_rel = format!("{log_root}/migration_status_pre_{}.txt", Utc::now().hhmmss());
    let pre = inventory::run(&db, &tree, cli.as_ref(), &w.join(&pre_rel), &pre_rel)?;
    r.warnings.extend(pre.warnings.iter().cloned());
    if !pre.ok {
        return Err(exit::cannot_run(format!("step 3 inventory: could not read the migration history ({pre_rel})")));
    }
    progress!("step 3 inventory ({}): {} pending, {} applied, {} applied remotely but missing locally", pre.source, pre.pending.len(), pre.applied.len(), pre.remote_only.len());
    for v in &pre.remote_only {
        r.warnings.push(format!("version {v} is applied on the target but missing locally: fetch it with `supabase migration fetch`"));
    }
    let (baseline, selected) = select(kind, &tree, &pre, &molecules, &mut r.warnings);
    for m in &selected {
        if m.rollback.is_none() {
            r.blockers.push(format!("no rollback script for {}: write supabase/migrations.backup/{}_{}_rollback.sql", m.file, m.version, m.name));
        }
    }
    if let Some(plan) = plan.as_mut() {
        for m in &molecules {
            plan.set(&m.id, "in_progress", Some(m.attempt), &[]);
        }
        plan.save()?;
    }

    let outcome = rehearse(&db, &pg_dump, &rehearsal, &tree, &contract, &baseline, &selected, &molecules, opts, kind, &mut r);
    let post = match outcome {
        Ok(post) => post,
        Err(e) if exit::exit_of(&e) != Exit::Interrupted => return Err(e),
        Err(_) => {
            r.halted = true;
            None
        }
    };
    if r.halted {
        r.blockers.push("interrupted (Ctrl-C or SIGTERM) part way: the target may hold a partial rehearsal; read the logs before re-running".into());
    }
    drop(target);

    // Step 7: post-run inventory, transcripts moved into the rehearsal dir, plan and attempts.
    // (On an interrupt the database may be gone with the local cluster: no post inventory.)
    for rel in [&conn_rel, &pre_rel] {
        let name = rel.rsplit('/').next().expect("a file name");
        std::fs::rename(w.join(rel), rehearsal.file(name))?;
    }
    let conn_name = conn_rel.rsplit('/').next().expect("a file name");
    let pre_name = pre_rel.rsplit('/').next().expect("a file name");
    r.logs.insert(0, ("connectivity".into(), rehearsal.rel_file(conn_name)));
    r.logs.insert(1, ("inventory before".into(), rehearsal.rel_file(pre_name)));
    r.inventory = Some(json!({"pre": pre.to_json(), "post": post}));
    finish(ctx, &rehearsal, &started, r, plan, &molecules)
}

/// Steps 7 and 8: the plan and attempts, then summary.json, SUMMARY.md, MANIFEST.sha256 and the
/// hand-off in the day's feedback file; the one screen (or the JSON) last.
fn finish(ctx: &Ctx, rehearsal: &RehearsalDir, started: &Utc, mut r: Summary, plan: Option<Plan>, molecules: &[Molecule]) -> Result<Exit> {
    let w = &ctx.workdir;
    let finished = Utc::now();
    r.finished_at = finished.rfc3339();
    if rehearsal.file("migration_status_post.txt").exists() {
        r.logs.push(("inventory after".into(), rehearsal.rel_file("migration_status_post.txt")));
    }
    r.logs.push(("summary".into(), rehearsal.rel_file("summary.json")));
    r.next_actions = next_actions(&r);
    let outcome = r.outcome();
    let evidence: Vec<String> = r.logs.iter().map(|(_, p)| p.clone()).collect();

    if let Some(mut plan) = plan {
        for m in molecules {
            let rows: Vec<&MigrationRow> = r.migrations.iter().filter(|row| row.molecule.as_deref() == Some(&m.id)).collect();
            let clean = outcome == crate::summary::Outcome::Passed
                || (!r.halted && rows.iter().all(|row| !row.failed() && row.applied()) && r.rls.as_ref().is_some_and(|x| x.is_clean()) && r.schema_restored == Some(true));
            let status = if clean { "completed" } else { "failed" };
            let line = json!({
                "molecule": m.id, "attempt": m.attempt, "files": m.migrations,
                "started_at": started.rfc3339(), "finished_at": finished.rfc3339(),
                "outcome": if r.halted { "halted" } else { status }, "evidence": evidence,
                "rehearsal_dir": rehearsal.rel,
            });
            let attempts_file = plan::record_attempt(w, &started.date(), m, &line)?;
            let mut own = evidence.clone();
            own.push(attempts_file);
            plan.set(&m.id, status, Some(m.attempt), &own);
        }
        plan.save()?;
    }

    let value = r.to_json();
    let json = serde_json::to_string_pretty(&value)?;
    write_atomic(&rehearsal.file("summary.json"), format!("{json}\n").as_bytes())?;
    write_atomic(&rehearsal.file("SUMMARY.md"), report::markdown(&value).as_bytes())?;
    write_manifest(&rehearsal.path)?;
    let feedback_file = feedback::append(w, &started.date(), &report::handoff(&value))?;
    progress!("step 8 hand-off: {} and {feedback_file}", rehearsal.rel_file("summary.json"));
    if ctx.json {
        println!("{json}");
    } else {
        print!("{}", report::screen(&value));
    }
    Ok(if r.halted { Exit::Interrupted } else { outcome.exit() })
}

/// What to do next, from what went wrong (or the sign-off when nothing did).
fn next_actions(s: &Summary) -> Vec<String> {
    let mut next = Vec::new();
    for row in s.migrations.iter().filter(|row| row.apply.as_ref().is_some_and(|a| !a.ok)) {
        let why = row.apply.as_ref().and_then(|a| a.error.as_ref()).map_or(String::new(), |e| format!(" ({} at {})", e.class, e.location().unwrap_or_default()));
        let replay = row.molecule.as_ref().map_or("`cargo xtask stage-rehearse`".to_string(), |m| format!("`cargo xtask apply --molecule {m}`"));
        next.push(format!("amend {}{why}, then replay with {replay}", row.migration.file));
    }
    if s.migrations.iter().any(|row| matches!(row.rollback, Some(RolledBack::Failed(_)))) {
        next.push("fix the failing rollback script(s) named above; a rollback must drop dependents before what they depend on".into());
    }
    if s.schema_restored == Some(false) {
        next.push("make the rollback scripts restore the schema exactly: read schema_rollback.diff".into());
    }
    if s.rls.as_ref().is_some_and(|x| !x.is_clean()) {
        next.push("fix the policies behind the failing RLS tests (rls_contract.log) and re-run".into());
    }
    if next.is_empty() && s.blockers.is_empty() && !s.halted && s.findings.is_empty() {
        next.push(if s.target.kind == "local" {
            "passed on a throwaway local cluster: rehearse on staging next (`cargo xtask stage-rehearse --target staging`)".into()
        } else {
            "ready for the manager's sign-off; coordinate the production window with DevOps (docs/directions/data.md)".into()
        });
    }
    next
}

/// Steps 4–6 (and the post-run inventory of step 7), which run while the target is open.
#[allow(clippy::too_many_arguments)]
fn rehearse(
    db: &Db,
    pg_dump: &std::path::Path,
    rehearsal: &RehearsalDir,
    tree: &Tree,
    contract: &[String],
    baseline: &[Migration],
    selected: &[Migration],
    molecules: &[Molecule],
    opts: &Options,
    kind: Kind,
    r: &mut Summary,
) -> Result<Option<serde_json::Value>> {
    let apply_rel = rehearsal.rel_file(APPLY_LOG);
    let mut apply_log = rehearsal.log(APPLY_LOG)?;
    r.logs.push(("apply".into(), apply_rel.clone()));
    for m in baseline {
        // On local, the migrations before a molecule's: the schema it expects, not rehearsed.
        let applied = apply::apply(db, m, true, &mut apply_log, &apply_rel)?;
        progress!("step 4 baseline {}_{} .. {}", m.version, m.name, if applied.ok { "ok" } else { "FAILED" });
        if !applied.ok {
            r.findings.extend(applied.findings);
            r.blockers.push(format!("the baseline migration {} failed on the throwaway cluster", m.file));
            return Ok(None);
        }
    }

    // Step 4: schema snapshot, then apply.
    let before = schema::snapshot(pg_dump, &db.dsn, &[], &db.redactor)?;
    write_atomic(&rehearsal.file("schema_before.sql"), before.as_bytes())?;
    let mut stopped = false;
    for m in selected {
        let molecule = molecules.iter().find(|mol| mol.migrations.contains(&m.file)).map(|mol| mol.id.clone());
        let mut row = MigrationRow::new(m, molecule);
        if !stopped {
            let applied = apply::apply(db, m, !opts.no_atomic, &mut apply_log, &apply_rel)?;
            progress!("step 4 apply {}_{} .. {}{} ({} ms)", m.version, m.name, if applied.ok { "ok" } else { "FAILED" }, if applied.atomic { "" } else { ", not atomic" }, applied.duration_ms);
            stopped = !applied.ok && opts.fail_fast;
            r.findings.extend(applied.findings.iter().cloned());
            row.apply = Some(applied);
        }
        r.migrations.push(row);
    }

    // After the forward apply: the security advisors.
    let applied: Vec<Migration> = r.migrations.iter().filter(|row| row.applied()).map(|row| row.migration.clone()).collect();
    r.findings.extend(advisors::run(db, &applied, &apply_rel)?);

    // Step 5: rollback, newest first, only what applied in this run; then compare and re-apply.
    let rollback_rel = rehearsal.rel_file(ROLLBACK_LOG);
    let mut rollback_log = rehearsal.log(ROLLBACK_LOG)?;
    r.logs.push(("rollback".into(), rollback_rel.clone()));
    for row in r.migrations.iter_mut().rev() {
        if !row.applied() {
            row.rollback = Some(RolledBack::Skipped);
            continue;
        }
        let (result, found) = rollback::rollback(db, &row.migration, &mut rollback_log, &rollback_rel)?;
        progress!("step 5 rollback {}_{} .. {}", row.migration.version, row.migration.name, match &result {
            RolledBack::Done => "ok",
            RolledBack::Missing => "MISSING (no rollback script)",
            _ => "FAILED",
        });
        r.findings.extend(found);
        row.rollback = Some(result);
    }
    let after = schema::snapshot(pg_dump, &db.dsn, &[], &db.redactor)?;
    write_atomic(&rehearsal.file("schema_after_rollback.sql"), after.as_bytes())?;
    r.schema_restored = Some(before == after);
    if before != after {
        let diff = schema::diff(&rehearsal.path, "schema_before.sql", "schema_after_rollback.sql", &before, &after);
        write_atomic(&rehearsal.file("schema_rollback.diff"), diff.as_bytes())?;
        r.logs.push(("schema diff".into(), rehearsal.rel_file("schema_rollback.diff")));
    }
    progress!("step 5 schema after rollback: {}", if before == after { "identical to before the apply" } else { "DIFFERS (schema_rollback.diff)" });
    use std::io::Write;
    writeln!(apply_log, "== re-apply\n")?;
    for row in r.migrations.iter_mut() {
        if matches!(row.rollback, Some(RolledBack::Done)) {
            let again = apply::apply(db, &row.migration, !opts.no_atomic, &mut apply_log, &apply_rel)?;
            progress!("step 5 re-apply {}_{} .. {}", row.migration.version, row.migration.name, if again.ok { "ok" } else { "FAILED" });
            r.findings.extend(again.findings.iter().cloned());
            row.reapply = Some(again);
        }
    }

    // Step 6: the RLS contract (on local, the seed first, as `supabase db reset` does).
    if kind == Kind::Local && db.workdir.join(SEED).is_file() {
        writeln!(apply_log, "==> {SEED}")?;
        let out = db.psql().args(["-f", SEED]).run(&db.redactor, Some(&mut apply_log))?;
        if !out.success() {
            writeln!(apply_log, "!! failure: {SEED}")?;
            r.findings.extend(findings::scan(&out.text, Some(&apply_rel)));
        }
        writeln!(apply_log)?;
    }
    let rls_rel = rehearsal.rel_file(RLS_LOG);
    let result = rls::run(db, contract, &mut rehearsal.log(RLS_LOG)?, &rls_rel)?;
    r.logs.push(("RLS contract".into(), rls_rel));
    progress!("step 6 rls: {} of {} planned passed, {} failed, {} errors", result.passed(), result.planned(), result.failed(), result.errors().len());
    r.findings.extend(result.errors().into_iter().cloned());
    r.rls = Some(result);

    // Step 7: the post-run inventory.
    let post_rel = rehearsal.rel_file("migration_status_post.txt");
    let cli = SupabaseCli::find(&db.workdir);
    let post = inventory::run(db, tree, cli.as_ref(), &rehearsal.file("migration_status_post.txt"), &post_rel)?;
    progress!("step 7 inventory after: {} pending, {} applied", post.pending.len(), post.applied.len());
    Ok(Some(post.to_json()))
}

/// What to apply: on local every migration is pending, so a molecule's earlier migrations form a
/// baseline; on staging, the pending ones (of the molecules, if any).
fn select(kind: Kind, tree: &Tree, pre: &inventory::Inventory, molecules: &[Molecule], warnings: &mut Vec<String>) -> (Vec<Migration>, Vec<Migration>) {
    let in_molecules = |m: &Migration| molecules.iter().any(|mol| mol.migrations.contains(&m.file));
    let pending = |m: &Migration| pre.pending.contains(&m.version);
    let mut selected: Vec<Migration> = tree.migrations.iter().filter(|m| pending(m) && (molecules.is_empty() || in_molecules(m))).cloned().collect();
    for m in tree.migrations.iter().filter(|m| in_molecules(m) && !pending(m)) {
        warnings.push(format!("{} is already applied on the target: not re-applied", m.file));
    }
    let mut baseline = Vec::new();
    if kind == Kind::Local && !molecules.is_empty() {
        let last = selected.iter().map(|m| m.version.clone()).max().unwrap_or_default();
        baseline = tree.migrations.iter().filter(|m| pending(m) && !in_molecules(m) && m.version < last).cloned().collect();
    }
    selected.sort_by(|a, b| a.version.cmp(&b.version));
    (baseline, selected)
}

/// The commands the rehearsal will run, as the feedback header records them (secrets replaced).
fn planned_commands(db: &Db, cli: Option<&SupabaseCli>) -> Vec<String> {
    let dsn = "\"$DATABASE_URL\"";
    let list = match cli {
        Some(c) if c.version.0 >= 3 => format!("supabase migration list --remote={dsn}"),
        _ => format!("supabase migration list --db-url {dsn}"),
    };
    let _ = db;
    vec![
        format!("cargo xtask {}", std::env::args().skip(1).map(|a| db.redactor.redact(&a)).collect::<Vec<_>>().join(" ")),
        format!("psql {dsn} -c \"{}\"", connectivity::QUERY),
        list,
        format!("psql {dsn} -X -v ON_ERROR_STOP=1 --single-transaction -f supabase/migrations/<each selected>.sql"),
        format!("psql {dsn} -X -v ON_ERROR_STOP=1 --single-transaction -f supabase/migrations.backup/<its rollback>.sql"),
        format!("psql {dsn} -X -f supabase/rls_tests.sql"),
    ]
}

fn new_summary(target: &crate::summary::Target, started: &Utc, dir: &str) -> Summary {
    Summary {
        target: target.clone(),
        started_at: started.rfc3339(),
        finished_at: String::new(),
        rehearsal_dir: dir.to_string(),
        migrations: Vec::new(),
        schema_restored: None,
        inventory: None,
        rls: None,
        findings: Vec::new(),
        blockers: Vec::new(),
        next_actions: Vec::new(),
        warnings: Vec::new(),
        logs: Vec::new(),
        halted: false,
    }
}
