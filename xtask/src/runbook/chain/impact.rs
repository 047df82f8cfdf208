//! What a transactional file did to the relations that existed before it, measured by the
//! chain's own statements (no round trip of its own): as a chain's first file starts, each
//! relation's relfilenode, the planner's row estimate and its sequential scans so far
//! (`pg_stat_get_xact_numscans`: PostgreSQL 15 keeps earlier transactions' counts there until it
//! flushes them, which a chain never gives it time to) into a session setting ([`BASELINE`]);
//! after each statement, the strong locks the session holds, with the statement that first held
//! each and when it started ([`STEP`]); before the commit, one notice per relation: its strongest
//! lock, whether it was rewritten (a new relfilenode) or read whole (more scans than as the file
//! started), and how long the lock has been held ([`REPORT`]), then the entries of every relation
//! the file touched are brought up to date for the next file ([`REFRESH`]): so each file costs
//! what it touches, not what the database holds. An index's lock counts for its table.

pub use crate::evidence::impact::{Impact, EXACT};
use crate::prepare::tree::SqlFile;
use crate::text::findings::{Class, Finding, Place, Severity, TargetKind};

/// A relation's entry (`c` is `pg_class`): `oid:relfilenode:reltuples:scans`, the relfilenode left
/// out while it is the oid (as it is until a first rewrite); an index's, its oid alone (it is
/// only asked whether it existed: its lock counts for its table).
const ENTRY: &str = "case when c.relkind = 'i' then c.oid::pg_catalog.text else c.oid || ':' || case when \
    c.relfilenode = c.oid then '' else c.relfilenode::pg_catalog.text end || ':' || c.reltuples::bigint || ':' || \
    coalesce(pg_catalog.pg_stat_get_xact_numscans(c.oid), 0) end";

/// Which relations an entry is kept for: tables, partitioned tables, materialized views and
/// indexes, not temporary, not the catalog's.
const KEPT: &str = "c.relkind in ('r', 'p', 'm', 'i') and c.relpersistence <> 't' \
    and c.relnamespace <> 'pg_catalog'::pg_catalog.regnamespace";

/// As a chain's first file starts (a PL/pgSQL statement): every relation's entry, `,e1,e2,...,`,
/// in the session setting `rehearsal.base` (which outlives the file's transaction and the reset
/// between files, [`crate::runbook::fresh`]).
pub fn baseline() -> String {
    format!(
        " perform pg_catalog.set_config('rehearsal.base', ',' || coalesce((select pg_catalog.string_agg({ENTRY}, ',') \
         from pg_catalog.pg_class c where {KEPT}), '') || ',', false);"
    )
}

/// The statement each marker of a transactional file runs, before its first statement and after
/// each `;` that ends one (prepared once per file, so planned once): with `M` the last marker
/// (`alias:file:k`), the locks held now on relations outside the catalog and not yet listed go
/// into `rehearsal.locks` as `relation:mode:k:start,` (`start`: when statement `k` started), the clock of the statement about to start into `rehearsal.t`, and the marker moves to
/// `k + 1`, which it returns. A marker missing (one that psql read as part of a literal or a
/// comment) fails the statement with `{alias}:disagree:`. `{alias}` is the chain's.
pub fn step(alias: &str) -> String {
    let m = "pg_catalog.current_setting('rehearsal.mark', true)";
    let listed = "coalesce(pg_catalog.current_setting('rehearsal.locks', true), '')";
    format!(
        "select s.v as {alias} from (select case \
         when coalesce({m}, '') !~ '^{alias}:[0-9]+:-?[0-9]+$' then \
         pg_catalog.int4(pg_catalog.concat('{alias}:disagree:', pg_catalog.left({m}, 0)))::pg_catalog.text \
         when pg_catalog.set_config('rehearsal.locks', {listed} || case when pg_catalog.split_part({m}, ':', 3)::int < 0 then '' \
         else coalesce((select pg_catalog.string_agg(l.relation || ':' || l.mode || ':' || pg_catalog.split_part({m}, ':', 3) \
         || ':' || coalesce(pg_catalog.current_setting('rehearsal.t', true), '0') || ',', '') from pg_catalog.pg_locks l \
         where l.pid = pg_catalog.pg_backend_pid() and l.locktype = 'relation' and l.granted and l.relation >= 16384::pg_catalog.oid \
         and position(',' || l.relation || ':' || l.mode || ':' in ',' || {listed}) = 0), '') end, true) is null then null \
         when pg_catalog.set_config('rehearsal.t', ((extract(epoch from pg_catalog.clock_timestamp()) * 1000)::bigint)::pg_catalog.text, \
         true) is null then null \
         else pg_catalog.set_config('rehearsal.mark', '{alias}:' || pg_catalog.split_part({m}, ':', 2) || ':' || \
         (pg_catalog.split_part({m}, ':', 3)::int + 1), true) end as v) s"
    )
}

/// The statement each `;` that ends an empty statement of a transactional file is followed by
/// (prepared with [`step`]; the end of a statement is followed by [`step`]): it counts them in
/// `rehearsal.term`, which must have reached the file's number of them before the commit, so an
/// end psql read as part of a literal or a comment (the tool's `\;` there) rolls the file back
/// too. It returns `alias:file:t`.
pub fn term(alias: &str) -> String {
    let m = "pg_catalog.current_setting('rehearsal.mark', true)";
    format!(
        "select s.v as {alias} from (select case \
         when coalesce({m}, '') !~ '^{alias}:[0-9]+:-?[0-9]+$' then \
         pg_catalog.int4(pg_catalog.concat('{alias}:disagree:', pg_catalog.left({m}, 0)))::pg_catalog.text \
         when pg_catalog.set_config('rehearsal.term', (coalesce(nullif(pg_catalog.current_setting('rehearsal.term', true), ''), \
         '0')::int + 1)::pg_catalog.text, true) is null then null \
         else '{alias}:' || pg_catalog.split_part({m}, ':', 2) || ':t' end as v) s"
    )
}

/// Before the commit, a PL/pgSQL block's declarations and statements (`{notice}` and `{check}` to
/// fill in): the strong locks listed whose relation existed before the file (it has an entry in
/// `rehearsal.base`, read once into `v_base`), then, only when there are such, one notice
/// `{notice}relation|mode|k|rewrite|scan|rows|held_ms` per relation, its strongest lock first (an
/// index's for its table); then [`refresh`].
pub fn report() -> String {
    format!(
        "declare r record; v_item text; v_kept text := ''; v_base text := coalesce(pg_catalog.current_setting('rehearsal.base', true), ''); \
         begin {{check}} foreach v_item in array pg_catalog.string_to_array(coalesce(pg_catalog.current_setting('rehearsal.locks', true), ''), ',') loop \
         if pg_catalog.split_part(v_item, ':', 2) in ('ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', \
         'ExclusiveLock', 'AccessExclusiveLock') and (pg_catalog.strpos(v_base, ',' || pg_catalog.split_part(v_item, ':', 1) || ',') > 0 or \
         pg_catalog.strpos(v_base, ',' || pg_catalog.split_part(v_item, ':', 1) || ':') > 0) then v_kept := v_kept || v_item || ','; end if; end loop; \
         if v_kept <> '' then {REPORT} end if;{}",
        refresh()
    )
}

/// [`report`]'s query over `v_kept` and `v_base`.
const REPORT: &str = "for r in with l as (select pg_catalog.split_part(x, ':', 1)::pg_catalog.oid as rel, pg_catalog.split_part(x, ':', 2) as mode, \
    pg_catalog.split_part(x, ':', 3)::int as k, pg_catalog.split_part(x, ':', 4)::bigint as t from pg_catalog.unnest(pg_catalog.string_to_array(v_kept, ',')) x \
    where x <> ''), \
    m as (select coalesce(i.indrelid, l.rel) as rel, l.mode, l.k, l.t, case l.mode when 'AccessExclusiveLock' then 8 \
    when 'ExclusiveLock' then 7 when 'ShareRowExclusiveLock' then 6 when 'ShareLock' then 5 else 4 end as rank, \
    pg_catalog.strpos(v_base, ',' || coalesce(i.indrelid, l.rel) || ':') as at \
    from l left join pg_catalog.pg_index i on i.indexrelid = l.rel), \
    s as (select distinct on (m.rel) m.rel, m.mode, m.k, m.t, pg_catalog.split_part(pg_catalog.substr(v_base, m.at + 1, 100), ',', 1) as e \
    from m where m.at > 0 order by m.rel, m.rank desc, m.k) \
    select pg_catalog.format('%I.%I', n.nspname, c.relname) as name, s.mode, s.k, \
    c.relfilenode <> coalesce(nullif(pg_catalog.split_part(s.e, ':', 2), '')::pg_catalog.oid, s.rel) as rewrite, \
    coalesce(pg_catalog.pg_stat_get_xact_numscans(s.rel), 0) > pg_catalog.split_part(s.e, ':', 4)::bigint as scan, \
    pg_catalog.split_part(s.e, ':', 3)::bigint as est, (extract(epoch from pg_catalog.clock_timestamp()) * 1000)::bigint - s.t as held \
    from s join pg_catalog.pg_class c on c.oid = s.rel join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
    order by 1 \
    loop raise notice '{notice}%|%|%|%|%|%|%', r.name, r.mode, r.k, r.rewrite, r.scan, r.est, r.held; end loop;";

/// After the report (a PL/pgSQL statement, `v_base` the entries as the file started): the entries of
/// every relation the file locked (whatever it read, wrote, altered or created: the markers listed
/// them), as they are now, put first in `rehearsal.base`: the next file of the chain starts from them.
pub fn refresh() -> String {
    format!(
        " perform pg_catalog.set_config('rehearsal.base', ',' || coalesce((select pg_catalog.string_agg({ENTRY}, ',') \
         from pg_catalog.pg_class c where c.oid = any(array(select distinct pg_catalog.split_part(x, ':', 1)::pg_catalog.oid \
         from pg_catalog.unnest(pg_catalog.string_to_array(coalesce(pg_catalog.current_setting('rehearsal.locks', true), ''), ',')) x \
         where x <> '')) and {KEPT}), '') || coalesce(nullif(v_base, ''), ','), false);"
    )
}

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
