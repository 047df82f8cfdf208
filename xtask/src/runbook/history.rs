//! The target's history as the tool's own session reads it (one statement, in the round trip of
//! the first schema snapshot or alone), and `supabase migration list`'s table checked against it:
//! the CLI runs alongside the rehearsal and is never waited for before the apply.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use super::inventory::{compare, render_table, Early, Inventory, SQL_SOURCE};
use crate::database::Target;
use crate::evidence::artifacts::Transcript;
use crate::prepare::tree::Tree;
use crate::process::psql::Unit;
use crate::text::findings::{Class, Finding, Place, Severity};

/// The versions in the target's history as an SQL `text[]`, empty without a history table: read
/// by the server in the statement that uses it, so that statement also runs where there is none.
pub const APPLIED_SQL: &str = "(case when pg_catalog.to_regclass('supabase_migrations.schema_migrations') is null \
    then '{}'::text[] else (select coalesce(pg_catalog.array_agg(x::text order by x::text), '{}') \
    from pg_catalog.unnest(pg_catalog.xpath('/table/row/v/text()', pg_catalog.query_to_xml(\
    'select version as v from supabase_migrations.schema_migrations', false, false, ''))) x) end)";

/// The target's history in one statement (nothing without a history table): one line per row,
/// `[version, statements or null]` as hex-encoded JSON (no line break or XML escape survives the
/// trip). A history table without `statements` (an old CLI's) reads as rows without them.
pub const HISTORY_QUERY: &str = "select x::text from pg_catalog.unnest(case when \
    pg_catalog.to_regclass('supabase_migrations.schema_migrations') is null then '{}'::xml[] \
    else pg_catalog.xpath('/table/row/j/text()', pg_catalog.query_to_xml('select pg_catalog.encode(\
    pg_catalog.convert_to(pg_catalog.json_build_array(m.version, pg_catalog.to_jsonb(m) -> ''statements'')::text, \
    ''UTF8''), ''hex'') as j from supabase_migrations.schema_migrations m order by m.version', false, false, '')) end) x";

/// The target's history as the tool's own session read it.
#[derive(Debug, Default)]
pub struct History {
    pub versions: BTreeSet<String>,
    /// Each row's statements, where it has them.
    pub statements: BTreeMap<String, Vec<String>>,
}

impl History {
    /// From the lines of [`HISTORY_QUERY`]; `None` when a line does not read back.
    pub fn parse(lines: &[String]) -> Option<History> {
        let mut history = History::default();
        for line in lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
            let bytes = crate::text::hex::decode(line)?;
            let (version, statements) = serde_json::from_slice::<(String, Option<Vec<String>>)>(&bytes).ok()?;
            if let Some(statements) = statements {
                history.statements.insert(version.clone(), statements);
            }
            history.versions.insert(version);
        }
        Some(history)
    }

    /// The inventory it makes of `tree`, its table written to `log` (the CLI's, when it comes, is
    /// checked against it and written below).
    pub fn inventory(&self, tree: &Tree, log: &mut Transcript) -> Result<Inventory> {
        log.line("== the history before the apply, read by the tool (supabase_migrations.schema_migrations):")?;
        log.text(&render_table(tree, &self.versions))?;
        let mut inventory = Inventory { source: SQL_SOURCE.into(), ..Inventory::default() };
        compare(&mut inventory, tree, &self.versions);
        Ok(inventory)
    }
}

/// The target's history read on the working session, one round trip; `None` when it could not
/// be read (the caller falls back to the CLI's table).
pub fn read_history(target: &mut Target) -> Result<Option<History>> {
    target.doing("the migration history (one query)");
    let unit = Unit {
        before: "\\pset format unaligned\n\\pset tuples_only on".into(),
        body: format!("{HISTORY_QUERY};"),
        after: "\\pset format aligned\n\\pset tuples_only off".into(),
    };
    let ran = target.run(&unit, None)?;
    if !ran.ok() {
        return Ok(None);
    }
    let lines: Vec<String> = ran.text.lines().map(str::to_string).collect();
    Ok(History::parse(&lines))
}

/// What the CLI's table says against what the tool read: a `inventory_disagrees` finding for
/// each version they differ on that this run did not touch (`touched`: the versions it applied
/// or rolled back, which the CLI may have read before or after, as it runs alongside). `None`
/// when they agree. The CLI's transcript is written to `log` either way.
pub fn check_cli(
    early: Early,
    log: &mut Transcript,
    place: Place,
    tool: &BTreeSet<String>,
    touched: &BTreeSet<String>,
) -> Result<CliCheck> {
    if early.has_cli {
        log.line("")?;
        log.line("== `supabase migration list`, run alongside the rehearsal:")?;
    }
    let listed = early.wait(log, place)?;
    let mut check = CliCheck { warnings: listed.warnings, findings: listed.findings, agreed: None };
    let Some(remote) = listed.remote else { return Ok(check) };
    let outside = |set: &BTreeSet<String>| -> BTreeSet<String> { set.difference(touched).cloned().collect() };
    let (cli, ours) = (outside(&remote), outside(tool));
    if cli == ours {
        check.agreed = Some(listed.source);
        let during: Vec<&String> = remote.intersection(touched).collect();
        if !during.is_empty() {
            log.line("")?;
            log.line(&format!(
                "(the CLI read the history after this run had applied {} of the versions it lists as applied: the \
                 table above, read before the apply, is the history as the run found it)",
                during.len()
            ))?;
        }
        return Ok(check);
    }
    let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Vec<String> { a.difference(b).cloned().collect() };
    let (cli_only, ours_only) = (only(&cli, &ours), only(&ours, &cli));
    let mut said = Vec::new();
    if !cli_only.is_empty() {
        said.push(format!("the CLI lists {} as applied and the tool's query does not", cli_only.join(", ")));
    }
    if !ours_only.is_empty() {
        said.push(format!("the tool's query finds {} applied and the CLI does not list it", ours_only.join(", ")));
    }
    check.findings.push(Finding {
        class: Class::InventoryDisagrees,
        severity: Severity::Error,
        sqlstate: None,
        file: Some(log.rel().to_string()),
        line: None,
        message: format!(
            "`supabase migration list` and supabase_migrations.schema_migrations disagree: {}",
            said.join("; ")
        ),
        hint: "the CLI may be reading another database than the tool (check the DSN and `--workdir`), or the history \
               changed while the rehearsal ran (another apply on the same target): read the transcript, then \
               rehearse again"
            .into(),
        log: Some(log.rel().to_string()),
    });
    Ok(check)
}

/// Step 7's check: the history the CLI listed after the run against the one the run left (`left`:
/// what the history held before, with each version the run applied and left applied, and without
/// each it rolled back and did not apply again). A difference is an `inventory_disagrees` error:
/// the CLI read another database, or the history changed under the run.
pub fn check_post(left: &BTreeSet<String>, listed: &BTreeSet<String>, rel: &str) -> Option<Finding> {
    if left == listed {
        return None;
    }
    let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Vec<String> { a.difference(b).cloned().collect() };
    let mut said = Vec::new();
    let (cli_only, run_only) = (only(listed, left), only(left, listed));
    if !cli_only.is_empty() {
        said.push(format!("the CLI lists {} as applied and the run did not leave it so", cli_only.join(", ")));
    }
    if !run_only.is_empty() {
        said.push(format!("the run left {} applied and the CLI does not list it", run_only.join(", ")));
    }
    Some(Finding {
        class: Class::InventoryDisagrees,
        severity: Severity::Error,
        sqlstate: None,
        file: Some(rel.to_string()),
        line: None,
        message: format!(
            "`supabase migration list` after the run and the history the run left disagree: {}",
            said.join("; ")
        ),
        hint: "the CLI may be reading another database than the tool (check the DSN and `--workdir`), or someone \
               changed the history while the rehearsal ran: read the transcript, then rehearse again"
            .into(),
        log: Some(rel.to_string()),
    })
}

/// What [`check_cli`] found.
#[derive(Debug, Default)]
pub struct CliCheck {
    pub warnings: Vec<String>,
    pub findings: Vec<Finding>,
    /// The CLI's name and version when its table agreed.
    pub agreed: Option<String>,
}
