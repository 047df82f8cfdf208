//! Step 3, inventory: `supabase migration list` against the DSN (`--db-url` on CLI 2.x,
//! `--remote=<url>` on 3.x), tee'd to `migration_status_*.txt`. Without the CLI (or when it
//! fails), the same table from `supabase_migrations.schema_migrations` on the working session,
//! with a warning. The result: what is pending, what is applied, and what was applied remotely but
//! is missing locally.
//!
//! The CLI half ([`list`]) touches no session, so it can run on another thread while the working
//! session does read-only work; [`finish`] then falls back to SQL if needed and compares.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use anyhow::Result;

use crate::database::conn::Conn;
use crate::database::local;
use crate::database::Target;
use crate::evidence::artifacts::Transcript;
use crate::evidence::summary::InventoryRecord;
use crate::prepare::tree::Tree;
use crate::process::gate::Gate;
use crate::process::psql::Unit;
use crate::process::{self, Tee};
use crate::text::findings::{self, Class, Finding, Place, Severity};
use crate::tools::supabase_cli::SupabaseCli;

#[derive(Debug, Default)]
pub struct Inventory {
    /// `supabase CLI 3.1.0` or `SQL (supabase_migrations.schema_migrations)`.
    pub source: String,
    pub pending: Vec<String>,
    pub applied: Vec<String>,
    pub remote_only: Vec<String>,
    pub warnings: Vec<String>,
    pub findings: Vec<Finding>,
    /// False when neither the CLI nor SQL could read the history.
    pub ok: bool,
}

impl Inventory {
    pub fn record(&self) -> InventoryRecord {
        InventoryRecord {
            source: self.source.clone(),
            pending: self.pending.clone(),
            applied: self.applied.clone(),
            remote_only: self.remote_only.clone(),
        }
    }
}

/// What the CLI said, before the SQL fallback.
#[derive(Debug, Default)]
pub struct Listed {
    pub(super) remote: Option<BTreeSet<String>>,
    pub(super) source: String,
    pub(super) warnings: Vec<String>,
    pub(super) findings: Vec<Finding>,
}

/// The CLI's half: `supabase migration list`, its output into `log`.
pub fn list(cli: Option<&SupabaseCli>, conn: &Conn, log: &mut Transcript, place: Place) -> Result<Listed> {
    let ran = run_cli(cli, conn, log, None)?;
    Ok(listed(cli, ran, log.rel(), place))
}

/// [`list`] started now on a thread of its own, its output kept until [`Early::wait`] writes it
/// to the step's transcript: the CLI's start (a few hundred ms) overlaps the steps before.
pub fn spawn_list(cli: Option<SupabaseCli>, conn: Conn) -> Early {
    spawn(cli, conn, None)
}

/// [`spawn_list`] held at its first connection until [`Early::release`] ([`crate::process::gate`]):
/// the CLI starts up now, and reads the history only once the run has left it as it will stay.
pub fn spawn_held(cli: Option<SupabaseCli>, conn: Conn) -> Early {
    spawn(cli, conn, Some(Gate::default()))
}

fn spawn(cli: Option<SupabaseCli>, conn: Conn, gate: Option<Gate>) -> Early {
    let has_cli = cli.is_some();
    let at = gate.clone();
    let handle = std::thread::spawn(move || {
        let mut lines: Vec<String> = Vec::new();
        let ran = run_cli(cli.as_ref(), &conn, &mut lines, at.as_ref())?;
        Ok((cli, ran, lines))
    });
    Early { handle: Some(handle), has_cli, gate }
}

type Spawned = (Option<SupabaseCli>, Option<(bool, String)>, Vec<String>);

/// A `supabase migration list` started early. Dropped unused (the run stopped before its step),
/// it is waited for (a held one is let go unconnected first), so its scratch dir goes with it.
pub struct Early {
    handle: Option<std::thread::JoinHandle<Result<Spawned>>>,
    pub(super) has_cli: bool,
    gate: Option<Gate>,
}

impl Early {
    /// A held list may now connect and read.
    pub fn release(&self) {
        if let Some(gate) = &self.gate {
            gate.open();
        }
    }

    /// The CLI's result, its output written to `log` as if it had run now.
    pub fn wait(mut self, log: &mut Transcript, place: Place) -> Result<Listed> {
        let handle = self.handle.take().expect("waited once");
        let (cli, ran, lines) = handle.join().expect("the inventory thread does not panic")?;
        for line in &lines {
            log.line(line)?;
        }
        Ok(listed(cli.as_ref(), ran, log.rel(), place))
    }
}

impl Drop for Early {
    fn drop(&mut self) {
        if let Some(gate) = &self.gate {
            gate.refuse();
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Run the CLI, its output to `tee`: `(succeeded, output)`, or nothing without a CLI (or when
/// its `gate` was refused).
fn run_cli(
    cli: Option<&SupabaseCli>,
    conn: &Conn,
    tee: &mut dyn Tee,
    gate: Option<&Gate>,
) -> Result<Option<(bool, String)>> {
    let Some(cli) = cli else { return Ok(None) };
    // The CLI unpacks a native module into TMPDIR; give it a dir of its own and remove it after.
    let scratch = local::scratch_dir("rehearsal-cli-")?;
    let mut args: Vec<OsString> = vec!["migration".into(), "list".into()];
    args.extend(cli.dsn_args(&conn.argv_dsn()).into_iter().map(OsString::from));
    args.extend(["--workdir".into(), conn.workdir.clone().into_os_string()]);
    let env = cli.env(conn.env().with("TMPDIR", scratch.path()));
    let (cwd, redactor) = (Some(conn.workdir.as_path()), &conn.redactor);
    let out = match gate {
        Some(gate) => process::stream_held(&cli.exec, &args, &env, cwd, redactor, gate, Some(tee)),
        None => process::stream(&cli.exec, &args, &env, cwd, redactor, Some(tee)).map(Some),
    };
    drop(scratch);
    Ok(out?.map(|out| (out.success(), out.text)))
}

/// What the CLI's run amounts to; `rel` names the transcript its findings point at.
fn listed(cli: Option<&SupabaseCli>, ran: Option<(bool, String)>, rel: &str, place: Place) -> Listed {
    let mut listed = Listed::default();
    let (Some(cli), Some((success, text))) = (cli, ran) else {
        listed.warnings.push(
            "the Supabase CLI is not installed (`npm install --no-save` installs the pinned version); the inventory \
             comes from supabase_migrations.schema_migrations instead"
                .into(),
        );
        return listed;
    };
    if success {
        listed.source = format!("supabase CLI {}", cli.version_string());
        listed.remote = Some(parse_cli_table(&text));
    } else {
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_string();
        listed.warnings.push(format!("`supabase migration list` failed ({last}); read the history with SQL instead"));
        listed.findings.extend(findings::scan(&text, Some(rel), place));
    }
    listed
}

const HISTORY_SQL: &str =
    "select to_regclass('supabase_migrations.schema_migrations') is not null as rehearsal_has_history \\gset\n\
    \\if :rehearsal_has_history\nselect version from supabase_migrations.schema_migrations order by version;\n\\endif";

/// The SQL fallback when the CLI gave nothing, then the comparison with the tree.
pub fn finish(listed: Listed, target: &mut Target, tree: &Tree, log: &mut Transcript) -> Result<Inventory> {
    let mut inventory = Inventory {
        source: listed.source,
        warnings: listed.warnings,
        findings: listed.findings,
        ..Inventory::default()
    };
    let mut remote = listed.remote;
    if remote.is_none() {
        let unit = Unit {
            before: "\\pset format unaligned\n\\pset tuples_only on".into(),
            body: HISTORY_SQL.into(),
            after: "\\pset format aligned\n\\pset tuples_only off".into(),
        };
        let ran = target.run(&unit, None)?;
        if ran.ok() {
            inventory.source = SQL_SOURCE.into();
            let versions: BTreeSet<String> =
                ran.text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
            log.text(&render_table(tree, &versions))?;
            remote = Some(versions);
        } else {
            log.text(&ran.text)?;
            inventory.findings.extend(findings::scan(&ran.text, Some(log.rel()), target.kind.place()));
        }
    }
    let Some(remote) = remote else { return Ok(inventory) };
    compare(&mut inventory, tree, &remote);
    Ok(inventory)
}

/// Pending, applied and remote-only, from the history's versions.
pub(super) fn compare(inventory: &mut Inventory, tree: &Tree, remote: &BTreeSet<String>) {
    let local: BTreeSet<&str> = tree.migrations.iter().map(|m| m.version.as_str()).collect();
    inventory.pending =
        tree.migrations.iter().filter(|m| !remote.contains(&m.version)).map(|m| m.version.clone()).collect();
    inventory.applied =
        tree.migrations.iter().filter(|m| remote.contains(&m.version)).map(|m| m.version.clone()).collect();
    inventory.remote_only = remote.iter().filter(|v| !local.contains(v.as_str())).cloned().collect();
    inventory.ok = true;
}

pub const SQL_SOURCE: &str = "SQL (supabase_migrations.schema_migrations)";

/// An applied migration whose file no longer splits into the statements its history row holds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Edit {
    pub version: String,
    pub file: String,
    /// The first statement that differs, from 1.
    pub statement: usize,
    pub history: String,
    pub file_text: String,
    #[serde(skip)]
    pub line: Option<u32>,
}

/// Each applied migration whose file no longer splits (as the Supabase CLI splits it) into the
/// statements its history row holds, with the first statement that differs (in short).
pub fn edits(tree: &Tree, applied: &[String], history: &BTreeMap<String, Vec<String>>) -> Vec<Edit> {
    let mut out = Vec::new();
    for m in tree.migrations.iter().filter(|m| applied.contains(&m.version)) {
        let Some(recorded) = history.get(&m.version) else { continue };
        let now = m.sql.script.history_statements();
        if &now == recorded {
            continue;
        }
        let n = now.iter().zip(recorded).position(|(a, b)| a != b).unwrap_or(now.len().min(recorded.len()));
        let short = |s: Option<&String>| {
            s.map_or("(none)".to_string(), |s| {
                let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
                if one.chars().count() > 120 {
                    format!("{}…", one.chars().take(120).collect::<String>())
                } else {
                    one
                }
            })
        };
        out.push(Edit {
            version: m.version.clone(),
            file: m.file().to_string(),
            statement: n + 1,
            history: short(recorded.get(n)),
            file_text: short(now.get(n)),
            line: m.sql.script.statements.get(n).map(|s| s.line as u32),
        });
    }
    out
}

/// `edited_after_apply` for each of [`edits`] (an error when `fail`).
pub fn edited(tree: &Tree, applied: &[String], history: &BTreeMap<String, Vec<String>>, fail: bool) -> Vec<Finding> {
    edits(tree, applied, history)
        .into_iter()
        .map(|e| Finding {
            class: Class::EditedAfterApply,
            severity: if fail { Severity::Error } else { Severity::Warning },
            sqlstate: None,
            line: e.line,
            message: format!(
                "{} was edited after it was applied here: statement {} is `{}` in the file and `{}` in the history",
                e.file, e.statement, e.file_text, e.history
            ),
            hint: format!(
                "an edit to an applied migration never reaches a database that has it: restore {} to what was applied \
                 (`supabase migration fetch` gets the history's text) and put the change in a new migration",
                e.file
            ),
            file: Some(e.file),
            log: None,
        })
        .collect()
}

/// The remote versions in the CLI's table (`Local | Remote | Time`), with or without backticks.
pub fn parse_cli_table(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(|c| c.trim().trim_matches('`').trim()).collect();
            (cells.len() == 3).then(|| cells[1].to_string())
        })
        .filter(|remote| !remote.is_empty() && remote.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// The CLI's table, drawn from the tree and the history read by SQL.
pub(super) fn render_table(tree: &Tree, remote: &BTreeSet<String>) -> String {
    let mut versions: BTreeSet<&str> = tree.migrations.iter().map(|m| m.version.as_str()).collect();
    versions.extend(remote.iter().map(String::as_str));
    let local: BTreeSet<&str> = tree.migrations.iter().map(|m| m.version.as_str()).collect();
    let mut out = String::from("   Local          | Remote         \n  ----------------|----------------\n");
    for v in versions {
        let l = if local.contains(v) { v } else { "" };
        let r = if remote.contains(v) { v } else { "" };
        out.push_str(&format!("   {l:<14} | {r:<14} \n"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_table_as_printed_to_a_pipe() {
        let text = "\n  \n   Local            | Remote           | Time (UTC)            \n  ------------------|------------------|-----------------------\n   `20251011090000` | `20251011090000` | `2025-10-11 09:00:00` \n   `20251011093000` | ` `              | `2025-10-11 09:30:00` \n   ` `              | `20990101000000` | `2099-01-01 00:00:00` \n";
        let remote = super::parse_cli_table(text);
        assert_eq!(remote.into_iter().collect::<Vec<_>>(), vec!["20251011090000", "20990101000000"]);
    }
}
