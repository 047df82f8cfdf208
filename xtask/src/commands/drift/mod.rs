//! `cargo xtask drift [--target staging|url] [--json]`: is the target what its migration history
//! says? Read-only on the target: one read-only transaction reads its catalog and its history.
//! The local migration files whose versions that history lists are replayed on a throwaway
//! cluster (the local target, its template reused), read with the same snapshot query, and the
//! two compared object by object ([`crate::runbook::drift`]). Also: applied files edited since
//! (split as the Supabase CLI splits them, against the statements their history rows hold), and
//! versions the target has that the tree lacks. Exit 0 with none, 1 with any, 2 when it cannot
//! run.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::{flow, Ctx};

mod declarative;
mod replays;
mod written;

use crate::database::{Kind, Opening, Target};
use crate::evidence::artifacts::Transcript;
use crate::evidence::record::Record;
use crate::exit::{self, Exit};
use crate::prepare::tree::Migration;
use crate::prepare::{self, Flags, Needs, Prepared};
use crate::progress;
use crate::runbook::drift::{self, Difference};
use crate::runbook::history::{History, HISTORY_QUERY};
use crate::runbook::inventory::{self, Edit};
use crate::runbook::{apply, snapshot};
use crate::text::findings::{Class, Finding, Severity};
use declarative::{declarative, Declarative};
use written::{write_files, WrittenFiles};

/// What `drift --json` prints.
#[derive(Serialize)]
struct Report {
    target: String,
    replayed: usize,
    drift: Vec<Difference>,
    edited: Vec<Edit>,
    /// Applied rows without statements: their files cannot be compared.
    not_comparable: Vec<String>,
    remote_only: Vec<String>,
    replay_log: String,
    /// With `supabase/schemas/`: the declarative schema against all the migrations.
    #[serde(skip_serializing_if = "Option::is_none")]
    declarative: Option<Declarative>,
    /// With `--write-migration`: the files written and what they hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    written: Option<WrittenFiles>,
}

pub fn run(ctx: &Ctx, flags: Flags, write_migration: Option<String>) -> Result<Exit> {
    if let Some(name) = &write_migration {
        if name.is_empty()
            || name.len() > 100
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(exit::cannot_run(format!(
                "--write-migration {}: a name of letters, digits, `_` and `-` (at most 100): it becomes the file name \
                 supabase/migrations/<version>_NAME.sql",
                crate::text::escape::one_line(name)
            )));
        }
    }
    let p = prepare::prepare(ctx.workdir.clone(), flags, Needs::default(), None)?;
    let declared = prepare::tree::declared(&p.workdir, p.project.schema_paths.as_deref())?;
    if p.kind == Kind::Local {
        let Some(declared) = declared else {
            return Err(exit::cannot_run(
                "drift compares a real database with its migration history: name it with --target staging or --target url \
                 (a local cluster is built from the history, so there is nothing to compare; with supabase/schemas/ it \
                 compares the declarative schema with the migrations)",
            ));
        };
        if write_migration.is_some() {
            return Err(exit::cannot_run(
                "--write-migration records what a real database has: name it with --target staging or --target url",
            ));
        }
        let report = Report {
            target: "local (the declarative schema against the migrations)".into(),
            replayed: 0,
            drift: Vec::new(),
            edited: Vec::new(),
            not_comparable: Vec::new(),
            remote_only: Vec::new(),
            replay_log: String::new(),
            declarative: Some(declarative(&p, &declared, None)?),
            written: None,
        };
        return finish(ctx, &report);
    }
    let mut target = flow::open_target(&p)?;
    let what = target.what();
    progress!("drift: reading {what} (one read-only transaction: its catalog and its migration history)");
    let (records, parts) = snapshot::records(&mut target, &[HISTORY_QUERY.to_string()])?;
    let history = parts
        .ok()
        .and_then(|parts| parts.first().and_then(|lines| History::parse(lines)))
        .ok_or_else(|| exit::cannot_run(format!("drift: the migration history of {what} could not be read")))?;
    drop(target);

    let applied: Vec<Migration> =
        p.tree.migrations.iter().filter(|m| history.versions.contains(&m.version)).cloned().collect();
    let (replayed, log) = replay(&p, &applied)?;
    let drift = drift::compare(&records, &replayed, &p.config.drift_ignore_schemas);
    let versions: Vec<String> = applied.iter().map(|m| m.version.clone()).collect();
    let edited = inventory::edits(&p.tree, &versions, &history.statements);
    let not_comparable: Vec<String> =
        versions.iter().filter(|v| !history.statements.contains_key(*v)).cloned().collect();
    let local: std::collections::BTreeSet<&str> = p.tree.migrations.iter().map(|m| m.version.as_str()).collect();
    let remote_only: Vec<String> = history.versions.iter().filter(|v| !local.contains(v.as_str())).cloned().collect();
    let all_applied = applied.len() == p.tree.migrations.len();
    let declarative = match &declared {
        Some(files) => Some(declarative(&p, files, all_applied.then_some(replayed.as_slice()))?),
        None => None,
    };
    let written = match &write_migration {
        Some(name) => Some(write_files(&p, name, &drift, &records, &replayed)?),
        None => None,
    };
    let report = Report {
        target: what,
        replayed: applied.len(),
        drift,
        edited,
        not_comparable,
        remote_only,
        replay_log: log,
        declarative,
        written,
    };
    finish(ctx, &report)
}

/// The report on the screen or as JSON; exit 0 when it names nothing, 1 when it does.
fn finish(ctx: &Ctx, report: &Report) -> Result<Exit> {
    if ctx.json {
        crate::out::text(&format!("{}\n", serde_json::to_string_pretty(report)?))?;
    } else {
        screen(report)?;
    }
    let clean = report.drift.is_empty()
        && report.edited.is_empty()
        && report.remote_only.is_empty()
        && report.declarative.as_ref().is_none_or(|d| d.differences.is_empty());
    Ok(if clean { Exit::Passed } else { Exit::Failed })
}

/// The `applied` files on a throwaway cluster: its snapshot records, and the replay's log (in the
/// day's folder). A file that fails there stops the comparison (exit 2): drift against half a
/// history would be wrong.
fn replay(p: &Prepared, applied: &[Migration]) -> Result<(Vec<String>, String)> {
    progress!("drift: replaying the {} applied migration(s) on a throwaway cluster", applied.len());
    let mut log = Transcript::new_in_day(&p.workdir, &p.started, "drift_replay", "log")?;
    let records = replay_into(p, applied, &mut log, "the history")?;
    Ok((records, log.rel().to_string()))
}

/// [`replay`] into `log`: the records of the cluster the `applied` files make. The same files
/// replayed before on the same server are not replayed again ([`replays`]): the log holds that
/// replay's transcript under a line that says so.
pub(super) fn replay_into(
    p: &Prepared,
    applied: &[Migration],
    log: &mut Transcript,
    what: &str,
) -> Result<Vec<String>> {
    let server = crate::tools::server::ensure_local(
        &prepare::extensions_used(&p.workdir, &p.tree, &[]),
        p.project.major_version,
    )?;
    let (slot, key) = replays::slot(&server, applied)?;
    if let Some(kept) = replays::read(&slot) {
        log.line(&format!(
            "-- {what}: these {} migration(s) were replayed on this local server at {} (replay {key}); that \
             replay's catalog is compared, its transcript follows",
            applied.len(),
            kept.replayed_at
        ))?;
        log.text(&kept.transcript)?;
        return Ok(kept.records);
    }
    let from = log.len()?;
    let mut local = Target::open(Opening {
        kind: Kind::Local,
        workdir: &p.workdir,
        config: &p.config,
        db_url: None,
        superuser_postgres: false,
        timeouts: p.flags.timeouts.clone(),
        psql: p.psql.clone(),
        server: Some(server),
    })?;
    let mut failed: Vec<String> = Vec::new();
    apply::apply_all(&mut local, applied, (true, None), log, &mut None, &mut |m, result| {
        if !result.ok {
            let why = result.error.as_ref().map_or("it failed".to_string(), |e| e.message.clone());
            failed.push(format!("{}: {why}", m.file()));
        }
        Ok(result.ok)
    })?;
    if let Some(first) = failed.first() {
        return Err(exit::cannot_run(format!(
            "drift: {what} could not be replayed locally, so there is nothing sound to compare: {first} ({})",
            log.rel()
        )));
    }
    let records = snapshot::records(&mut local, &[])?.0;
    drop(local);
    let replay = replays::Replay {
        records,
        transcript: log.since(from)?,
        replayed_at: crate::evidence::artifacts::rfc3339(&chrono::Utc::now()),
    };
    // A replay that cannot be kept is only slower next time.
    if let Err(e) = replays::keep(&slot, &replay) {
        progress!("drift: the replay could not be kept for next time ({e:#})");
    }
    Ok(replay.records)
}

/// At most this many `drift` findings in a rehearsal; `cargo xtask drift` lists them all.
const MAX_FINDINGS: usize = 50;

/// The rehearsal's drift: each difference between the catalog step 3 read (`records`) and the
/// history replayed alongside, a `drift` finding (a warning; an error with `[drift] fail`).
pub(super) fn findings_into(
    p: &Prepared,
    records: &[String],
    replayed: Result<(Vec<String>, Transcript)>,
    record: &mut Record,
) {
    let (replayed, log) = match replayed {
        Ok(done) => done,
        Err(e) => {
            progress!("step 3 drift: not checked ({e:#})");
            record.summary_mut().warnings.push(format!(
                "drift was not checked: {e:#}; a rehearsal on a drifted staging may pass where production fails"
            ));
            return;
        }
    };
    let found = drift::compare(records, &replayed, &p.config.drift_ignore_schemas);
    let kind = record.summary().target.kind.as_str().to_string();
    let place = if kind == "staging" { kind.clone() } else { "the target".to_string() };
    progress!(
        "step 3 drift: {}",
        if found.is_empty() {
            format!("none ({place} is what its migration history makes)")
        } else {
            format!("{} difference(s) between {place} and its migration history", found.len())
        }
    );
    let severity = if p.config.drift_fail { Severity::Error } else { Severity::Warning };
    let s = record.summary_mut();
    for d in found.iter().take(MAX_FINDINGS) {
        s.findings.push(Finding {
            class: Class::Drift,
            severity,
            sqlstate: None,
            file: None,
            line: None,
            message: format!(
                "{}: {} {} {}: {}",
                d.table.as_deref().unwrap_or("(not a table's)"),
                d.kind,
                d.object,
                words(d.change, &place),
                d.detail
            ),
            hint: format!(
                "a rehearsal on a drifted {place} may pass where production fails (or the reverse): put the hand \
                 change in a migration, or undo it on {place}; `cargo xtask drift --target {kind}` lists every \
                 difference"
            ),
            log: Some(log.rel().to_string()),
        });
    }
    if found.len() > MAX_FINDINGS {
        s.warnings.push(format!(
            "{} more drift difference(s) not listed: `cargo xtask drift --target {kind}` lists them all",
            found.len() - MAX_FINDINGS
        ));
    }
}

/// A change in words.
fn words(change: &str, place: &str) -> String {
    match change {
        "extra_on_target" => format!("on {place}, made by no migration"),
        "missing_on_target" => format!("in the history, missing on {place}"),
        _ => format!("differs on {place}"),
    }
}

/// One line per difference, grouped by table.
fn screen(r: &Report) -> Result<()> {
    // On local only the declarative schema is compared.
    let mut out = String::new();
    if !r.replay_log.is_empty() {
        out.push_str(&format!("drift on {} against its history ({} migration(s) replayed)\n", r.target, r.replayed));
        if r.drift.is_empty() && r.edited.is_empty() && r.remote_only.is_empty() {
            out.push_str("no drift: the target is what its migration history makes\n");
        }
    }
    let mut by: BTreeMap<String, Vec<&Difference>> = BTreeMap::new();
    for d in &r.drift {
        by.entry(d.table.clone().unwrap_or_else(|| "(not a table's)".into())).or_default().push(d);
    }
    for (table, list) in by {
        for d in list {
            let what = words(d.change, "the target");
            out.push_str(&format!(
                "{table}: {} {} {what}: {}\n",
                d.kind,
                crate::text::escape::one_line(&d.object),
                crate::text::escape::one_line(&d.detail)
            ));
        }
    }
    for e in &r.edited {
        out.push_str(&format!(
            "{}: edited after it was applied: statement {} is `{}` in the file and `{}` in the history\n",
            e.file,
            e.statement,
            crate::text::escape::one_line(&e.file_text),
            crate::text::escape::one_line(&e.history)
        ));
    }
    for v in &r.remote_only {
        out.push_str(&format!("{v}: applied on the target, no such migration here (`supabase migration fetch`)\n"));
    }
    for v in &r.not_comparable {
        out.push_str(&format!("{v}: its history row holds no statements, so its file cannot be compared\n"));
    }
    if !r.replay_log.is_empty() {
        out.push_str(&format!("replay log: {}\n", r.replay_log));
    }
    if let Some(d) = &r.declarative {
        out.push_str(&format!(
            "declarative schema ({} file(s) in supabase/schemas) against the migrations: {}\n",
            d.files,
            if d.differences.is_empty() {
                "the same".to_string()
            } else {
                format!("{} difference(s)", d.differences.len())
            }
        ));
        for x in &d.differences {
            let what = match x.change {
                "declared_only" => {
                    "declared in supabase/schemas, made by no migration (`supabase db diff -f NAME` writes it)"
                }
                "migrations_only" => "made by the migrations, not declared in supabase/schemas",
                _ => "differs between supabase/schemas and the migrations",
            };
            out.push_str(&format!(
                "{}: {} {} {what}: {}\n",
                crate::text::escape::one_line(x.table.as_deref().unwrap_or("(not a table's)")),
                x.kind,
                crate::text::escape::one_line(&x.object),
                crate::text::escape::one_line(&x.detail)
            ));
        }
        out.push_str(&format!("declarative replay log: {}\n", d.log));
    }
    if let Some(w) = &r.written {
        match (&w.migration, &w.rollback) {
            (Some(m), Some(b)) => out.push_str(&format!(
                "wrote {m} ({} object(s) as the target has them) and its rollback {b}\n",
                w.written.objects.len()
            )),
            _ if r.drift.is_empty() => out.push_str("no migration written: there is no drift to record\n"),
            _ => out.push_str("no migration written: none of the differences is one the writer can write\n"),
        }
        for n in &w.written.not_written {
            out.push_str(&format!(
                "not written, write it by hand: {} {} ({}): {}\n",
                n.kind,
                crate::text::escape::one_line(&n.object),
                n.change,
                n.why
            ));
        }
        if w.migration.is_some() {
            out.push_str(
                "next: apply it on the target, where it changes nothing that matters, so its history lists it \
                 (`cargo xtask apply --target ...`); then `cargo xtask drift` no longer names those objects\n",
            );
        }
    }
    Ok(crate::out::text(&out)?)
}
