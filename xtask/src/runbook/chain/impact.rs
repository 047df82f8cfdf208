//! What a transactional file did to the relations that existed before it, measured by the
//! markers the chain already sends (no round trip of its own): as the file starts, each
//! relation's relfilenode and the planner's row estimate; after each statement, the strong locks
//! the session holds, with the statement that first held each and when that statement started;
//! before the commit, one notice per relation: its strongest lock, whether it was rewritten (a new
//! relfilenode) or read whole (its sequential scans counted by `pg_stat_get_xact_numscans`, as the
//! file ended against as it started: PostgreSQL 15 keeps earlier transactions' counts there until
//! it flushes them), and
//! how long the lock has been held. An index's lock counts for its table.

use serde::{Deserialize, Serialize};

use crate::prepare::tree::SqlFile;
use crate::text::findings::{Class, Finding, Place, Severity, TargetKind};

/// As the file starts (inside its first marker): `oid:relfilenode:reltuples:scans,` per relation and
/// index (an index the file creates is not its table's: the table's own lock says what waits).
pub const BASELINE: &str = " perform pg_catalog.set_config('rehearsal.base', coalesce((select pg_catalog.string_agg(c.oid || ':' || \
    c.relfilenode || ':' || c.reltuples::bigint || ':' || coalesce(pg_catalog.pg_stat_get_xact_numscans(c.oid), 0), ',') from pg_catalog.pg_class c where c.relkind in ('r', 'p', 'm', 'i') \
    and c.relpersistence <> 't' and c.relnamespace <> 'pg_catalog'::pg_catalog.regnamespace), ''), true);";

/// `rows_from` for a count made before the apply.
pub const EXACT: &str = "exact_before_apply";

/// After statement `{k}`: each strong relation lock held now and not yet listed, as
/// `relation:mode:k:start,`.
pub const LOCKS: &str = " perform pg_catalog.set_config('rehearsal.locks', coalesce(pg_catalog.current_setting('rehearsal.locks', true), '') \
    || coalesce((select pg_catalog.string_agg(l.relation || ':' || l.mode || ':{k}:' || coalesce(pg_catalog.current_setting('rehearsal.t', true), '0') || ',', '') \
    from pg_catalog.pg_locks l where l.pid = pg_catalog.pg_backend_pid() and l.locktype = 'relation' and l.granted \
    and l.mode in ('ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock') \
    and position(',' || l.relation || ':' || l.mode || ':' in ',' || coalesce(pg_catalog.current_setting('rehearsal.locks', true), '')) = 0), ''), true);";

/// Before the commit: one notice `{notice}relation|mode|k|rewrite|scan|rows|held_ms` per
/// relation that existed before the file and that it locked.
pub const REPORT: &str = "for r in with l as (select pg_catalog.split_part(x, ':', 1)::pg_catalog.oid as rel, pg_catalog.split_part(x, ':', 2) as mode, \
    pg_catalog.split_part(x, ':', 3)::int as k, pg_catalog.split_part(x, ':', 4)::bigint as t from pg_catalog.unnest(pg_catalog.string_to_array(coalesce(\
    pg_catalog.current_setting('rehearsal.locks', true), ''), ',')) x where x <> ''), \
    b as (select pg_catalog.split_part(x, ':', 1)::pg_catalog.oid as rel, pg_catalog.split_part(x, ':', 2)::pg_catalog.oid as node, pg_catalog.split_part(x, ':', 3)::bigint as est, \
    pg_catalog.split_part(x, ':', 4)::bigint as scans \
    from pg_catalog.unnest(pg_catalog.string_to_array(coalesce(pg_catalog.current_setting('rehearsal.base', true), ''), ',')) x where x <> ''), \
    m as (select coalesce(i.indrelid, l.rel) as rel, l.mode, l.k, l.t, case l.mode when 'AccessExclusiveLock' then 8 \
    when 'ExclusiveLock' then 7 when 'ShareRowExclusiveLock' then 6 when 'ShareLock' then 5 else 4 end as rank \
    from l left join pg_catalog.pg_index i on i.indexrelid = l.rel where exists (select 1 from b where b.rel = l.rel)), \
    s as (select distinct on (m.rel) m.* from m order by m.rel, m.rank desc, m.k) \
    select pg_catalog.format('%I.%I', n.nspname, c.relname) as name, s.mode, s.k, c.relfilenode <> b.node as rewrite, \
    coalesce(pg_catalog.pg_stat_get_xact_numscans(s.rel), 0) > b.scans as scan, b.est, (extract(epoch from pg_catalog.clock_timestamp()) * 1000)::bigint - s.t as held \
    from s join b on b.rel = s.rel join pg_catalog.pg_class c on c.oid = s.rel join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
    order by 1 \
    loop raise notice '{notice}%|%|%|%|%|%|%', r.name, r.mode, r.k, r.rewrite, r.scan, r.est, r.held; end loop;";

/// What one file did to one relation that existed before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    pub relation: String,
    /// The strongest lock the file's session held on it, as `pg_locks` names it.
    pub lock: String,
    /// What that lock makes wait: `reads_and_writes`, `writes` or `nothing`.
    pub blocks: String,
    /// Rewritten: a new relfilenode.
    pub rewrite: bool,
    /// Read whole: a sequential scan in the file's transaction.
    pub scan: bool,
    /// The planner's estimate as the file started (`None` when the table was never analyzed).
    pub rows: Option<u64>,
    /// `estimate` (the planner's `reltuples` as the file started) or `exact_before_apply` (counted
    /// exactly, up to the count's bound, in step 3's round trip: the run's first file only, as
    /// nothing ran between the count and it).
    pub rows_from: String,
    /// From the start of the statement that took the lock to the file's commit.
    pub held_ms: u64,
    /// The line of the statement that took the lock.
    pub line: Option<usize>,
    /// Read from the server while the file ran (not predicted).
    pub measured: bool,
    /// The statement's index in the file.
    #[serde(skip)]
    pub statement: usize,
}

impl Impact {
    /// One report notice's payload, `relation|mode|k|rewrite|scan|rows|held_ms`.
    pub fn parse(payload: &str) -> Option<Impact> {
        let parts: Vec<&str> = payload.trim().split('|').collect();
        let [relation, lock, k, rewrite, scan, rows, held] = parts[..] else { return None };
        let blocks = match lock {
            "AccessExclusiveLock" => "reads_and_writes",
            "ExclusiveLock" | "ShareRowExclusiveLock" | "ShareLock" => "writes",
            _ => "nothing",
        };
        Some(Impact {
            relation: relation.to_string(),
            lock: lock.to_string(),
            blocks: blocks.to_string(),
            rewrite: rewrite == "t",
            scan: scan == "t",
            rows: rows.parse::<i64>().ok().filter(|r| *r >= 0).map(|r| r as u64),
            rows_from: "estimate".to_string(),
            held_ms: held.parse::<i64>().map_or(0, |h| h.max(0) as u64),
            line: None,
            measured: true,
            statement: k.parse().ok()?,
        })
    }

    /// Whether the lock makes others wait while the work grows with the table: a rewrite, a
    /// whole read or an index build (SHARE) under a lock that blocks writes or more.
    pub fn risky(&self) -> bool {
        self.blocks != "nothing" && (self.rewrite || self.scan || self.lock == "ShareLock")
    }

    /// The lock as PostgreSQL's documentation names it: `ACCESS EXCLUSIVE` for `AccessExclusiveLock`.
    pub fn lock_words(&self) -> String {
        let mut words = String::new();
        for (n, c) in self.lock.trim_end_matches("Lock").char_indices() {
            if n > 0 && c.is_uppercase() {
                words.push(' ');
            }
            words.push(c.to_ascii_uppercase());
        }
        words
    }

    /// What the lock makes wait, in words.
    pub fn waits(&self) -> &'static str {
        if self.blocks == "reads_and_writes" {
            "reads and writes wait"
        } else {
            "writes wait"
        }
    }

    /// The rows, as shown: `200000` when counted, `~200000` when estimated.
    pub fn rows_shown(&self) -> Option<String> {
        let exact = self.rows_from == EXACT;
        self.rows.map(|r| if exact { r.to_string() } else { format!("~{r}") })
    }

    /// The rows counted exactly before the apply, where `exact` has them, in place of the estimate.
    pub fn use_exact(impact: &mut [Impact], exact: &std::collections::BTreeMap<String, u64>) {
        for i in impact.iter_mut() {
            if let Some(n) = exact.get(&i.relation) {
                i.rows = Some(*n);
                i.rows_from = EXACT.to_string();
            }
        }
    }

    /// The `lock_risk` message: what holds which lock on what, for how long, and what waits.
    pub fn message(&self, statement: &str) -> String {
        let lock = self.lock_words();
        let rows = self.rows_shown().map_or("rows not estimated".to_string(), |r| format!("{r} rows"));
        let work = if self.rewrite {
            "rewrites it"
        } else if self.lock == "ShareLock" {
            "builds an index on it"
        } else {
            "reads it whole"
        };
        format!(
            "{statement} holds {lock} on {} ({rows}) for {} ms while it {work}: {}",
            self.relation,
            self.held_ms,
            self.waits()
        )
    }

    /// The safe form for what the statement does.
    pub fn hint(&self, statement_upper: &str) -> &'static str {
        if self.lock == "ShareLock" {
            "CREATE INDEX CONCURRENTLY, in a migration of its own"
        } else if statement_upper.contains(" TYPE ") {
            "add a new column of the new type, backfill it in batches, switch to it, then drop the old one"
        } else if statement_upper.contains("DEFAULT") || statement_upper.contains("STORED") {
            "add the column nullable without a default, SET DEFAULT for new rows, then backfill in batches"
        } else if statement_upper.contains("SET NOT NULL") {
            "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later migration, then SET NOT NULL"
        } else if statement_upper.contains("FOREIGN KEY")
            || statement_upper.contains("REFERENCES")
            || statement_upper.contains("CHECK")
        {
            "add the constraint NOT VALID, then VALIDATE CONSTRAINT in a later migration"
        } else if statement_upper.contains("REFRESH") {
            "REFRESH MATERIALIZED VIEW CONCURRENTLY (with a unique index on the view)"
        } else if statement_upper.contains("UNIQUE") || statement_upper.contains("PRIMARY KEY") {
            "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX"
        } else {
            "do the work in small batches, or in a form that takes a weaker lock"
        }
    }
}

/// What a file that runs outside a transaction (CONCURRENTLY) takes, by definition (PostgreSQL 15:
/// SHARE UPDATE EXCLUSIVE, which blocks neither reads nor writes), not measured: the relation as
/// the statement names it.
pub fn by_definition(file: &SqlFile) -> Vec<Impact> {
    let mut out = Vec::new();
    for (k, statement) in file.script.statements.iter().enumerate() {
        if !statement.concurrently {
            continue;
        }
        let plain = file.script.plain(statement);
        let lower = plain.to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let after = |word: &str| words.iter().position(|w| *w == word).and_then(|at| words.get(at + 1)).copied();
        let relation = match words.first().copied() {
            Some("create") => after("on").and_then(|r| if r == "only" { after("only") } else { Some(r) }),
            Some("drop") | Some("reindex") => words.last().copied(),
            _ => None,
        };
        let Some(relation) = relation else { continue };
        let relation = relation.trim_end_matches(';').split('(').next().unwrap_or(relation);
        let relation = if relation.contains('.') { relation.to_string() } else { format!("public.{relation}") };
        out.push(Impact {
            relation,
            lock: "ShareUpdateExclusiveLock".into(),
            blocks: "nothing".into(),
            rewrite: false,
            scan: false,
            rows: None,
            rows_from: "estimate".into(),
            held_ms: 0,
            line: Some(statement.line),
            measured: false,
            statement: k,
        });
    }
    out
}

/// A `lock_risk` for each relation a statement of `file` locked against others while its work grew
/// with the table, on that statement's line: a warning, or an error on a table of `error_from`
/// rows or more (or of unknown size) when the project says so (`[lock_risk]`).
pub fn lock_risk(file: &SqlFile, impacts: &[Impact], place: Place, error_from: Option<u64>) -> Vec<Finding> {
    let on = match place.target {
        TargetKind::Remote => "measured on this database's rows: on production, expect the time to grow with the table",
        _ => "measured on the local cluster's rows: on staging and production, expect the time to grow with the table",
    };
    impacts
        .iter()
        .filter(|i| i.risky())
        .map(|i| {
            let statement = file.script.statements.get(i.statement);
            let words: Vec<&str> =
                statement.map(|s| s.words.iter().take(2).map(String::as_str).collect()).unwrap_or_default();
            let upper =
                statement.map(|s| format!(" {} ", file.script.plain(s).to_ascii_uppercase())).unwrap_or_default();
            Finding {
                class: Class::LockRisk,
                severity: match error_from {
                    Some(from) if i.rows.is_none_or(|r| r >= from) => Severity::Error,
                    _ => Severity::Warning,
                },
                sqlstate: None,
                file: Some(file.rel.clone()),
                line: i.line.map(|l| l as u32),
                message: i.message(&words.join(" ")),
                hint: format!("{} ({on})", i.hint(&upper)),
                log: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_line_reads_back() {
        let i = Impact::parse("public.orders|AccessExclusiveLock|0|t|f|200000|312").unwrap();
        assert_eq!(
            (i.blocks.as_str(), i.rewrite, i.scan, i.rows, i.held_ms, i.statement),
            ("reads_and_writes", true, false, Some(200000), 312, 0)
        );
        assert!(i.risky());
        assert_eq!(
            i.message("ALTER TABLE"),
            "ALTER TABLE holds ACCESS EXCLUSIVE on public.orders (~200000 rows) for 312 ms while it rewrites it: reads and writes wait"
        );
        let metadata = Impact::parse("public.orders|AccessExclusiveLock|1|f|f|-1|3").unwrap();
        assert!(!metadata.risky(), "a nullable ADD COLUMN only changes the catalog");
        assert_eq!(metadata.rows, None);
        let index = Impact::parse("public.orders|ShareLock|0|f|f|10|5").unwrap();
        assert!(index.risky() && index.blocks == "writes");
        assert!(Impact::parse("nonsense").is_none());
    }
}
