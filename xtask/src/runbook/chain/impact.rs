//! What a transactional file did to the relations that existed before it, measured by the
//! markers the chain already sends (no round trip of its own): as the file starts, each
//! relation's relfilenode and the planner's row estimate; after each statement, the strong locks
//! the session holds, with the statement that first held each and when that statement started;
//! before the commit, one notice per relation: its strongest lock, whether it was rewritten (a new
//! relfilenode) or read whole (its sequential scans counted by `pg_stat_get_xact_numscans`, as the
//! file ended against as it started: PostgreSQL 15 keeps earlier transactions' counts there until
//! it flushes them), and
//! how long the lock has been held. An index's lock counts for its table.

pub use crate::evidence::impact::{Impact, EXACT};
use crate::prepare::tree::SqlFile;
use crate::text::findings::{Class, Finding, Place, Severity, TargetKind};

/// As the file starts (inside its first marker): `oid:relfilenode:reltuples:scans,` per relation and
/// index (an index the file creates is not its table's: the table's own lock says what waits).
pub const BASELINE: &str = " perform pg_catalog.set_config('rehearsal.base', coalesce((select pg_catalog.string_agg(c.oid || ':' || \
    c.relfilenode || ':' || c.reltuples::bigint || ':' || coalesce(pg_catalog.pg_stat_get_xact_numscans(c.oid), 0), ',') from pg_catalog.pg_class c where c.relkind in ('r', 'p', 'm', 'i') \
    and c.relpersistence <> 't' and c.relnamespace <> 'pg_catalog'::pg_catalog.regnamespace), ''), true);";

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
        let i = parse("public.orders|AccessExclusiveLock|0|t|f|200000|312").unwrap();
        assert_eq!(
            (i.blocks.as_str(), i.rewrite, i.scan, i.rows, i.held_ms, i.statement),
            ("reads_and_writes", true, false, Some(200000), 312, 0)
        );
        assert!(i.risky());
        assert_eq!(
            i.message("ALTER TABLE"),
            "ALTER TABLE holds ACCESS EXCLUSIVE on public.orders (~200000 rows) for 312 ms while it rewrites it: reads and writes wait"
        );
        let metadata = parse("public.orders|AccessExclusiveLock|1|f|f|-1|3").unwrap();
        assert!(!metadata.risky(), "a nullable ADD COLUMN only changes the catalog");
        assert_eq!(metadata.rows, None);
        let index = parse("public.orders|ShareLock|0|f|f|10|5").unwrap();
        assert!(index.risky() && index.blocks == "writes");
        assert!(parse("nonsense").is_none());
    }
}
