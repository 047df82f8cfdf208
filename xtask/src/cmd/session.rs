//! What `stage-rehearse` and the single-step commands share: the checks that refuse bad input
//! before anything is written (steps 0–1), connectivity and inventory (steps 2–3), and the
//! bookkeeping of steps 7–8 (plan, attempts, summary.json, SUMMARY.md, manifest, hand-off).

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
use crate::steps::{connectivity, inventory, Db};
use crate::summary::{MigrationRow, Summary};
use crate::supabase_cli::SupabaseCli;
use crate::target::{self, Kind, Target};
use crate::tree::{self, Migration, Tree, CONTRACT, TESTS};
use crate::{feedback, progress, report};

/// The flags of `stage-rehearse` and of the single-step commands.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub target: Option<String>,
    pub db_url: Option<String>,
    pub molecules: Vec<String>,
    pub plan: Option<PathBuf>,
    pub no_atomic: bool,
    pub fail_fast: bool,
    pub settings: Vec<String>,
    pub lock_timeout: Option<String>,
    pub superuser_postgres: bool,
}

/// A run in progress: the tree, the plan's molecules, the open target and what the steps found.
pub struct Session {
    pub started: Utc,
    pub config: Config,
    pub kind: Kind,
    pub tree: Tree,
    pub contract: Vec<String>,
    pub plan: Option<Plan>,
    pub molecules: Vec<Molecule>,
    pub cli: Option<SupabaseCli>,
    pub pg_dump: PathBuf,
    pub rehearsal: RehearsalDir,
    pub db: Db,
    pub target: Option<Target>,
    pub summary: Summary,
    /// Transcripts written to the day's folder, moved into the rehearsal dir at the end.
    pub day_logs: Vec<(String, String)>,
    /// Removes the rehearsal dir if the run stops before writing anything into it.
    pub _empty_dir: EmptyDirGuard,
    /// The rehearsal lock on a shared database, held until the target closes.
    pub lock: Option<crate::lock::RehearsalLock>,
    /// A molecule's status after a clean run: `completed` for a rehearsal, `in_progress` for an
    /// apply replay (applied, not yet rolled back or verified).
    pub success_status: &'static str,
}

impl Session {
    /// Steps 0 and 1: refuse bad input before anything is written, then create the rehearsal dir,
    /// open the target, and start the day's feedback header. `objective` is its first line.
    pub fn begin(ctx: &Ctx, opts: &Options, objective: Option<&str>, needs_contract: bool) -> Result<Session> {
        let started = Utc::now();
        let w = &ctx.workdir;
        let config = Config::load(w)?;
        let (kind, why) = target::choose(opts.target.as_deref(), w, &config);
        progress!("target: {} ({why})", kind.as_str());
        let tree = Tree::load(w)?;
        let contract = tree::contract_files(w)?;
        if needs_contract {
            Session::require_contract(&contract, ctx.json)?;
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

        let rehearsal = RehearsalDir::create(w, &started)?;
        let rehearsal_path = rehearsal.path.clone();
        let target = target::open(kind, w, &config, opts.db_url.as_deref(), opts.superuser_postgres)?;
        let db = Db {
            psql,
            dsn: target.dsn.clone(),
            redactor: target.redactor.clone(),
            workdir: w.clone(),
            settings: opts.settings.clone(),
            lock_timeout: opts.lock_timeout.clone(),
        };
        let mut summary = new_summary(&target.summary(), &started, &rehearsal.rel);
        if let Some(objective) = objective {
            let objective = match molecules.is_empty() {
                true => format!("{objective} every pending migration on {}.", kind.as_str()),
                false => format!(
                    "{objective} molecule(s) {} on {}.",
                    molecules.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", "),
                    kind.as_str()
                ),
            };
            let (created, doc_warnings) = feedback::ensure_header(
                w,
                &started.date(),
                &objective,
                &planned_commands(&db, cli.as_ref()),
                &rehearsal.rel,
            )?;
            progress!(
                "step 0 alignment: {} {}",
                feedback::path(&started.date()),
                if created { "header created" } else { "exists; header kept" }
            );
            summary.warnings.extend(doc_warnings);
        }
        summary
            .warnings
            .extend(tree.orphan_rollbacks.iter().map(|f| format!("{f} rolls back no migration in the tree")));
        Ok(Session {
            started,
            config,
            kind,
            tree,
            contract,
            plan,
            molecules,
            cli,
            pg_dump,
            rehearsal,
            db,
            target: Some(target),
            summary,
            day_logs: Vec::new(),
            _empty_dir: EmptyDirGuard(rehearsal_path),
            lock: None,
            success_status: "completed",
        })
    }

    /// Halt (exit 3) when there is no contract: runbook §6, checked before the database is touched.
    fn require_contract(contract: &[String], json_out: bool) -> Result<()> {
        if !contract.is_empty() {
            return Ok(());
        }
        let message =
            format!("halted: no RLS contract ({CONTRACT}) and no {TESTS}/: escalate to the manager (runbook §6)");
        if json_out {
            println!("{}", json!({"schema_version": 1, "outcome": "halted", "blockers": [message]}));
        }
        Err(exit::halt(message))
    }

    /// Step 2, into the day's folder. An unreachable database stops the run (exit 2).
    pub fn connectivity(&mut self) -> Result<connectivity::Connectivity> {
        let rel = format!("artifacts/ops/{}/ipv4_pooler_check_{}.log", self.started.date(), Utc::now().hhmmss());
        let conn = connectivity::check(&self.db, &self.db.workdir.join(&rel), &rel)?;
        self.day_logs.push(("connectivity".into(), rel.clone()));
        if !conn.reached {
            let why = conn.findings.first().map_or("no result row".to_string(), |f| {
                format!("{}: {}\n  what to do: {}", f.class, f.message, f.hint)
            });
            return Err(exit::cannot_run(format!("step 2 connectivity: the database is unreachable ({rel})\n  {why}")));
        }
        progress!(
            "step 2 connectivity: {} at {} ({})",
            conn.database.as_deref().unwrap_or("?"),
            conn.server_addr.as_deref().unwrap_or("?"),
            if conn.ipv4() { "IPv4" } else { "NOT IPv4" }
        );
        if !conn.ipv4() {
            self.summary.blockers.push(format!(
                "the server address {} is not IPv4: staging must go through the IPv4 session pooler",
                conn.server_addr.as_deref().unwrap_or("(none)")
            ));
        }
        Ok(conn)
    }

    /// Take the rehearsal lock (staging and url; a throwaway cluster is ours alone).
    pub fn lock(&mut self) -> Result<()> {
        if self.kind != Kind::Local {
            let what = format!("{}/{}", self.summary.target.host, self.summary.target.database);
            self.lock =
                Some(crate::lock::RehearsalLock::acquire(&self.db.psql, &self.db.dsn, &self.db.redactor, &what)?);
            progress!("step 1 lock: this rehearsal holds the rehearsal lock on {what}");
        }
        Ok(())
    }

    /// Step 3, into the day's folder: what is pending, applied, and applied remotely only.
    pub fn inventory(&mut self) -> Result<inventory::Inventory> {
        Ok(self.inventory_during(|_| Ok(()))?.0)
    }

    /// Step 3 while `meanwhile` runs on this thread: the CLI takes half a second to start, time in
    /// which read-only work (the connectivity check, the first schema snapshot) can be done.
    pub fn inventory_during<T>(
        &mut self,
        meanwhile: impl FnOnce(&mut Session) -> Result<T>,
    ) -> Result<(inventory::Inventory, T)> {
        let rel = format!("artifacts/ops/{}/migration_status_pre_{}.txt", self.started.date(), Utc::now().hhmmss());
        let (db, tree, cli) = (self.db.clone(), self.tree.clone(), self.cli.clone());
        let path = self.db.workdir.join(&rel);
        let (pre, other) = std::thread::scope(|scope| {
            let pre = scope.spawn(|| inventory::run(&db, &tree, cli.as_ref(), &path, &rel));
            let other = meanwhile(self);
            (pre.join().expect("the inventory thread does not panic"), other)
        });
        let other = other?;
        let pre = pre?;
        self.day_logs.push(("inventory before".into(), rel.clone()));
        self.summary.warnings.extend(pre.warnings.iter().cloned());
        self.summary.findings.extend(pre.findings.iter().cloned());
        if !pre.ok {
            return Err(exit::cannot_run(format!("step 3 inventory: could not read the migration history ({rel})")));
        }
        progress!(
            "step 3 inventory ({}): {} pending, {} applied, {} applied remotely but missing locally",
            pre.source,
            pre.pending.len(),
            pre.applied.len(),
            pre.remote_only.len()
        );
        for v in &pre.remote_only {
            self.summary.warnings.push(format!(
                "version {v} is applied on the target but missing locally: fetch it with `supabase migration fetch`"
            ));
        }
        Ok((pre, other))
    }

    /// The molecules' attempts start: `in_progress`, attempt counted, before the first apply.
    pub fn start_attempts(&mut self) -> Result<()> {
        if let Some(plan) = self.plan.as_mut() {
            for m in &self.molecules {
                plan.set(&m.id, "in_progress", Some(m.attempt), &[]);
            }
            plan.save()?;
        }
        Ok(())
    }

    /// Close the target and move the day's transcripts into the rehearsal dir (step 7).
    pub fn close_target(&mut self) -> Result<()> {
        self.lock = None;
        self.target = None;
        for (i, (label, rel)) in std::mem::take(&mut self.day_logs).into_iter().enumerate() {
            let name = rel.rsplit('/').next().expect("a file name").to_string();
            std::fs::rename(self.db.workdir.join(&rel), self.rehearsal.file(&name))?;
            self.summary.logs.insert(i, (label, self.rehearsal.rel_file(&name)));
        }
        Ok(())
    }

    /// Steps 7 and 8: the plan and attempts, then summary.json, SUMMARY.md, MANIFEST.sha256 and the
    /// hand-off in the day's feedback file; the one screen (or the JSON) last.
    pub fn finish(mut self, ctx: &Ctx) -> Result<Exit> {
        self.close_target()?;
        let (rehearsal, started, mut r, plan, molecules) =
            (&self.rehearsal, &self.started, self.summary, self.plan, &self.molecules);
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
                let rows: Vec<&MigrationRow> =
                    r.migrations.iter().filter(|row| row.molecule.as_deref() == Some(&m.id)).collect();
                let clean = outcome == crate::summary::Outcome::Passed
                    || (!r.halted
                        && rows.iter().all(|row| !row.failed() && row.applied())
                        && r.rls.as_ref().is_some_and(|x| x.is_clean())
                        && r.schema_restored == Some(true));
                let status = if clean { self.success_status } else { "failed" };
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
}

/// What to do next, from what went wrong (or the sign-off when nothing did).
fn next_actions(s: &Summary) -> Vec<String> {
    let mut next = Vec::new();
    for row in s.migrations.iter().filter(|row| row.apply.as_ref().is_some_and(|a| !a.ok)) {
        let why = row
            .apply
            .as_ref()
            .and_then(|a| a.error.as_ref())
            .map_or(String::new(), |e| format!(" ({} at {})", e.class, e.location().unwrap_or_default()));
        let replay = row
            .molecule
            .as_ref()
            .map_or("`cargo xtask stage-rehearse`".to_string(), |m| format!("`cargo xtask apply --molecule {m}`"));
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

/// What to apply: on local every migration is pending, so a molecule's earlier migrations form a
/// baseline; on staging, the pending ones (of the molecules, if any).
pub fn select(
    kind: Kind,
    tree: &Tree,
    pre: &inventory::Inventory,
    molecules: &[Molecule],
    warnings: &mut Vec<String>,
) -> (Vec<Migration>, Vec<Migration>) {
    let in_molecules = |m: &Migration| molecules.iter().any(|mol| mol.migrations.contains(&m.file));
    let pending = |m: &Migration| pre.pending.contains(&m.version);
    let mut selected: Vec<Migration> =
        tree.migrations.iter().filter(|m| pending(m) && (molecules.is_empty() || in_molecules(m))).cloned().collect();
    for m in tree.migrations.iter().filter(|m| in_molecules(m) && !pending(m)) {
        warnings.push(format!("{} is already applied on the target: not re-applied", m.file));
    }
    let mut baseline = Vec::new();
    if kind == Kind::Local && !molecules.is_empty() {
        let last = selected.iter().map(|m| m.version.clone()).max().unwrap_or_default();
        baseline =
            tree.migrations.iter().filter(|m| pending(m) && !in_molecules(m) && m.version < last).cloned().collect();
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
        format!(
            "cargo xtask {}",
            std::env::args().skip(1).map(|a| db.redactor.redact(&a)).collect::<Vec<_>>().join(" ")
        ),
        format!("psql {dsn} -c \"{}\"", connectivity::QUERY),
        list,
        format!("psql {dsn} -X -v ON_ERROR_STOP=1 --single-transaction -f supabase/migrations/<each selected>.sql"),
        format!(
            "psql {dsn} -X -v ON_ERROR_STOP=1 --single-transaction -f supabase/migrations.backup/<its rollback>.sql"
        ),
        format!("psql {dsn} -X -f supabase/rls_tests.sql"),
    ]
}

fn new_summary(target: &crate::summary::Target, started: &Utc, dir: &str) -> Summary {
    Summary::new(target.clone(), started.rfc3339(), dir)
}

/// A directory removed on drop if it is still empty (a refused run leaves no empty rehearsal dir).
pub struct EmptyDirGuard(PathBuf);

impl Drop for EmptyDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}
