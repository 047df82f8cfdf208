//! Schema snapshots for step 5's comparison: before the apply and after the rollbacks, each a
//! canonical, sorted description of every object a migration can create or change, read from
//! the catalog in one query on the working session (one round trip, where `pg_dump` makes hundreds).
//!
//! Covered: schemas, tables, views, materialized views, sequences (with their parameters and
//! owner column), composite types, columns (type, default, not null, identity, generated,
//! collation, grants), constraints, indexes, view definitions, functions and procedures (whole
//! definitions), triggers, policies, row level security flags, enums, domains, ranges, extensions,
//! publications and their tables and schemas, comments, default privileges, rules, extended
//! statistics, event triggers, owners and grants (each list of grants sorted: granting in another
//! order is the same schema), replica identity, column storage and statistics targets, roles
//! (attributes and memberships) and role and database settings (`pgrst.db_schemas` among them; a
//! setting whose name says secret, password, key or token is shown as its value's md5, never the
//! value). Extension members are left out (as `pg_dump`
//! leaves them), so an extension's own objects do not count as a schema change. Names are
//! printed with `search_path` set to `pg_catalog`, so they are always schema-qualified.

use anyhow::Result;

use crate::database::Target;
use crate::prepare::tree::Migration;
use crate::process::psql::Unit;
use crate::process::Redactor;

pub const QUERY: &str = r#"with ns as (
  select oid, nspname from pg_namespace
  where nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
    and nspname not like 'pg_temp_%' and nspname not like 'pg_toast_temp_%'
),
member as (select classid, objid from pg_depend where deptype = 'e')
select line from (
  select format('schema %I owner=%s acl=%s', n.nspname, quote_ident(pg_get_userbyid(s.nspowner)), coalesce((select string_agg(i::text, ',' order by i::text) from unnest(s.nspacl) i), '-')) as line
  from ns n join pg_namespace s on s.oid = n.oid
  where not exists (select 1 from member m where m.classid = 'pg_namespace'::regclass and m.objid = n.oid)
union all
  select format('relation %I.%I kind=%s owner=%s rls=%s force_rls=%s persistence=%s options=%s acl=%s partition_key=%s replica_identity=%s',
    n.nspname, c.relname, c.relkind, quote_ident(pg_get_userbyid(c.relowner)), c.relrowsecurity, c.relforcerowsecurity,
    c.relpersistence, coalesce(c.reloptions::text, '-'), coalesce((select string_agg(i::text, ',' order by i::text) from unnest(c.relacl) i), '-'), coalesce(pg_get_partkeydef(c.oid), '-'), c.relreplident)
  from pg_class c join ns n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f', 'c')
    and not exists (select 1 from member m where m.classid = 'pg_class'::regclass and m.objid = c.oid)
union all
  select format('column %I.%I.%I type=%s not_null=%s default=%s identity=%s generated=%s collation=%s acl=%s storage=%s statistics=%s',
    n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
    coalesce(pg_get_expr(d.adbin, d.adrelid), '-'), coalesce(nullif(a.attidentity, ''), '-'),
    coalesce(nullif(a.attgenerated, ''), '-'),
    case when a.attcollation <> t.typcollation then a.attcollation::regcollation::text else '-' end,
    coalesce((select string_agg(i::text, ',' order by i::text) from unnest(a.attacl) i), '-'),
    a.attstorage, a.attstattarget)
  from pg_attribute a
  join pg_class c on c.oid = a.attrelid
  join ns n on n.oid = c.relnamespace
  join pg_type t on t.oid = a.atttypid
  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
  where a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p', 'v', 'm', 'f', 'c')
    and not exists (select 1 from member m where m.classid = 'pg_class'::regclass and m.objid = c.oid)
union all
  select format('constraint %I.%I type=%s on %s: %s', n.nspname, co.conname, co.contype,
    case when co.conrelid <> 0 then co.conrelid::regclass::text else co.contypid::regtype::text end,
    pg_get_constraintdef(co.oid))
  from pg_constraint co join ns n on n.oid = co.connamespace
  where not exists (select 1 from member m where m.classid = 'pg_class'::regclass and m.objid = co.conrelid)
    and not exists (select 1 from member m where m.classid = 'pg_type'::regclass and m.objid = co.contypid)
union all
  select format('index %s', pg_get_indexdef(i.indexrelid))
  from pg_index i join pg_class c on c.oid = i.indexrelid join ns n on n.oid = c.relnamespace
  where not exists (select 1 from member m where m.classid = 'pg_class'::regclass and m.objid = i.indrelid)
union all
  select format('view %I.%I: %s', n.nspname, c.relname, pg_get_viewdef(c.oid))
  from pg_class c join ns n on n.oid = c.relnamespace
  where c.relkind in ('v', 'm')
    and not exists (select 1 from member m where m.classid = 'pg_class'::regclass and m.objid = c.oid)
union all
  select format('function %s owner=%s acl=%s: %s', p.oid::regprocedure, quote_ident(pg_get_userbyid(p.proowner)),
    coalesce((select string_agg(i::text, ',' order by i::text) from unnest(p.proacl) i), '-'),
    case when p.prokind in ('f', 'p', 'w') then pg_get_functiondef(p.oid) else 'kind ' || p.prokind::text end)
  from pg_proc p join ns n on n.oid = p.pronamespace
  where not exists (select 1 from member m where m.classid = 'pg_proc'::regclass and m.objid = p.oid)
union all
  select format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
  from pg_trigger t join pg_class c on c.oid = t.tgrelid join ns n on n.oid = c.relnamespace
  where not t.tgisinternal
union all
  select format('policy %I on %I.%I command=%s permissive=%s roles=%s using=%s check=%s',
    pol.polname, n.nspname, c.relname, pol.polcmd, pol.polpermissive,
    (select string_agg(case when r = 0 then 'public' else quote_ident(pg_get_userbyid(r)) end, ',' order by 1)
     from unnest(pol.polroles) r),
    coalesce(pg_get_expr(pol.polqual, pol.polrelid), '-'), coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '-'))
  from pg_policy pol join pg_class c on c.oid = pol.polrelid join ns n on n.oid = c.relnamespace
union all
  select format('type %s kind=%s owner=%s acl=%s%s', t.oid::regtype, t.typtype, pg_get_userbyid(t.typowner),
    coalesce((select string_agg(i::text, ',' order by i::text) from unnest(t.typacl) i), '-'),
    case t.typtype
      when 'e' then ' labels=' || (select string_agg(quote_literal(e.enumlabel), ',' order by e.enumsortorder)
                                   from pg_enum e where e.enumtypid = t.oid)
      when 'd' then ' base=' || format_type(t.typbasetype, t.typtypmod) || ' not_null=' || t.typnotnull
                    || ' default=' || coalesce(t.typdefault, '-')
      when 'r' then ' subtype=' || (select format_type(r.rngsubtype, null) from pg_range r where r.rngtypid = t.oid)
      else '' end)
  from pg_type t join ns n on n.oid = t.typnamespace
  where t.typtype in ('b', 'd', 'e', 'r', 'm')
    and not exists (select 1 from pg_type el where el.typarray = t.oid)
    and not exists (select 1 from member m where m.classid = 'pg_type'::regclass and m.objid = t.oid)
union all
  select format('sequence %I.%I type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s owned_by=%s',
    n.nspname, c.relname, format_type(s.seqtypid, null), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
    s.seqcache, s.seqcycle,
    coalesce((select d.refobjid::regclass::text || '.' || quote_ident(a.attname)
              from pg_depend d join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
              where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i')
              order by 1 limit 1), '-'))
  from pg_sequence s join pg_class c on c.oid = s.seqrelid join ns n on n.oid = c.relnamespace
  where not exists (select 1 from member m where m.classid = 'pg_class'::regclass and m.objid = c.oid)
union all
  select format('extension %I version=%s schema=%s', e.extname, e.extversion, e.extnamespace::regnamespace)
  from pg_extension e
union all
  select format('publication %I owner=%s all_tables=%s insert=%s update=%s delete=%s truncate=%s',
    p.pubname, pg_get_userbyid(p.pubowner), p.puballtables, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate)
  from pg_publication p
union all
  select format('publication %I table %s', p.pubname, pr.prrelid::regclass)
  from pg_publication_rel pr join pg_publication p on p.oid = pr.prpubid
union all
  select format('publication %I schema %s', p.pubname, pn.pnnspid::regnamespace)
  from pg_publication_namespace pn join pg_publication p on p.oid = pn.pnpubid
union all
  select format('comment on %s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
  from pg_description d
  cross join lateral pg_identify_object(d.classoid, d.objoid, d.objsubid) io
  where d.classoid in ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_type'::regclass, 'pg_namespace'::regclass,
                       'pg_constraint'::regclass, 'pg_trigger'::regclass, 'pg_policy'::regclass)
    -- initdb's own objects (oids below 16384) are not a migration's, but a schema such as public
    and (d.objoid >= 16384 or d.classoid = 'pg_namespace'::regclass)
    and (io.schema in (select nspname from ns)
         or (d.classoid = 'pg_namespace'::regclass and io.identity in (select quote_ident(nspname) from ns)))
    and not exists (select 1 from member m where m.classid = d.classoid and m.objid = d.objoid)
union all
  select format('default privileges role=%s schema=%s on=%s acl=%s', pg_get_userbyid(da.defaclrole),
    case when da.defaclnamespace = 0 then '-' else da.defaclnamespace::regnamespace::text end,
    da.defaclobjtype, coalesce((select string_agg(i::text, ',' order by i::text) from unnest(da.defaclacl) i), '-'))
  from pg_default_acl da
union all
  select format('rule %I on %I.%I: %s', r.rulename, n.nspname, c.relname, pg_get_ruledef(r.oid))
  from pg_rewrite r join pg_class c on c.oid = r.ev_class join ns n on n.oid = c.relnamespace
  where r.rulename <> '_RETURN'
union all
  select format('statistics %s', pg_get_statisticsobjdef(s.oid))
  from pg_statistic_ext s join ns n on n.oid = s.stxnamespace
union all
  select format('event trigger %I on %s enabled=%s function=%s tags=%s', e.evtname, e.evtevent, e.evtenabled,
    e.evtfoid::regproc, coalesce(e.evttags::text, '-'))
  from pg_event_trigger e
union all
  select format('role %I superuser=%s inherit=%s createrole=%s createdb=%s login=%s replication=%s bypassrls=%s connection_limit=%s valid_until=%s member_of=%s',
    r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolreplication,
    r.rolbypassrls, r.rolconnlimit, coalesce(r.rolvaliduntil::text, '-'),
    coalesce((select string_agg(g.rolname || case when m.admin_option then '(admin)' else '' end, ',' order by g.rolname)
      from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid), '-'))
  from pg_roles r where r.rolname !~ '^pg_'
union all
  select format('setting role=%s database=%s %s', case when s.setrole = 0 then '-' else pg_get_userbyid(s.setrole)::text end,
    coalesce((select datname::text from pg_database where oid = s.setdatabase), '-'),
    case when split_part(c, '=', 1) ~* '(secret|password|passwd|key|token)'
      then split_part(c, '=', 1) || '=md5:' || md5(substr(c, length(split_part(c, '=', 1)) + 2)) else c end)
  from pg_db_role_setting s cross join unnest(s.setconfig) c
) o
order by line;"#;

/// The schema as one canonical text, read in one query.
pub fn take(target: &mut Target) -> Result<String> {
    take_with(target, &[]).map(|(schema, _)| schema)
}

/// The schema and, in the same round trip, each of `extras` (queries, each row one line; a line
/// break in a value must be encoded by the query): `(schema, Ok(each extra's lines))`. When the
/// extras fail (a table a count cannot read), the snapshot alone is read again and their error
/// comes back in the second value. A random line between the parts, which no catalog text can
/// know, tells them apart.
pub fn take_with(target: &mut Target, extras: &[String]) -> Result<(String, Result<Vec<Vec<String>>>)> {
    let query = QUERY.trim_end().trim_end_matches(';').to_string();
    let (lines, parts) = read(target, &query, extras, "begin")?;
    Ok((lines.into_iter().map(|l| format!("{l}\n")).collect(), parts))
}

/// The snapshot as whole records (a function's definition is one, line breaks and all), read in
/// a read-only transaction: what `drift` compares.
pub fn records(target: &mut Target, extras: &[String]) -> Result<(Vec<String>, Result<Vec<Vec<String>>>)> {
    let (lines, parts) = read(target, &records_query(), extras, "begin read only")?;
    Ok((decode(&lines)?, parts))
}

/// The query of [`records`]: one hex-encoded record a row (a read of another round trip's,
/// [`crate::database::reads`]; it expects `search_path = pg_catalog`).
pub fn records_query() -> String {
    format!(
        "select pg_catalog.encode(pg_catalog.convert_to(s.line, 'UTF8'), 'hex') from ({}) s",
        QUERY.trim_end().trim_end_matches(';')
    )
}

/// The records from the lines of [`records_query`], sorted.
pub fn decode(lines: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for line in lines.iter().filter(|l| !l.is_empty()) {
        let text = crate::text::hex::decode(line).and_then(|b| String::from_utf8(b).ok());
        out.push(text.ok_or_else(|| anyhow::anyhow!("reading the schema from the catalog: a record did not decode"))?);
    }
    out.sort();
    Ok(out)
}

/// [`records`] as the canonical text [`take`] gives (each record, then a line feed).
pub fn joined(records: &[String]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

/// `query` and `extras` in one transaction (`begin`: how it starts), one round trip: the query's
/// lines and each extra's.
fn read(
    target: &mut Target,
    query: &str,
    extras: &[String],
    begin: &str,
) -> Result<(Vec<String>, Result<Vec<Vec<String>>>)> {
    target.doing("the schema snapshot (one catalog query)");
    let nonce = crate::process::psql::nonce();
    let split = format!("rehearsal_part_{nonce}");
    let mut body = format!("{begin}\\; set local search_path = pg_catalog\\; {query}");
    for extra in extras {
        body.push_str(&format!("\\; select '{split}'\\; {}", extra.trim_end().trim_end_matches(';')));
    }
    body.push_str("\\; commit;");
    // Only when it failed (psql knows without asking the server): end the aborted transaction.
    let unit = Unit {
        before: "\\pset format unaligned\n\\pset tuples_only on".into(),
        body,
        after: "\\if :ERROR\nrollback;\n\\endif\n\\pset format aligned\n\\pset tuples_only off".into(),
    };
    let ran = target.run(&unit, None)?;
    if !ran.ok() {
        let why = ran
            .text
            .lines()
            .chain(ran.stray.lines())
            .find(|l| l.contains("ERROR") || l.contains("error"))
            .unwrap_or("the session ended")
            .trim()
            .to_string();
        if extras.is_empty() || ran.ended {
            anyhow::bail!("reading the schema from the catalog failed: {why}");
        }
        let (lines, _) = read(target, query, &[], begin)?;
        return Ok((lines, Err(anyhow::anyhow!("{why}"))));
    }
    // The command tags of the transaction around the query (no snapshot line is upper case).
    let mut parts: Vec<Vec<String>> = vec![Vec::new()];
    for line in ran.text.lines().filter(|l| !matches!(*l, "BEGIN" | "SET" | "COMMIT")) {
        if line == split {
            parts.push(Vec::new());
        } else {
            parts.last_mut().expect("one part at least").push(line.to_string());
        }
    }
    anyhow::ensure!(
        parts.len() == extras.len() + 1,
        "reading the schema from the catalog: its parts did not come back"
    );
    let first = parts.remove(0);
    Ok((first, Ok(parts)))
}

/// `diff -u a b` run in `dir` (the two snapshots already written there). Without `diff`, the lines
/// only in one of them.
pub fn diff(dir: &std::path::Path, a: &str, b: &str, before: &str, after: &str) -> String {
    use xshell::{cmd, Shell};
    let out = (|| -> Option<String> {
        let sh = Shell::new().ok()?;
        let diff = which::which("diff").ok()?;
        let _dir = sh.push_dir(dir);
        let out = crate::process::output(cmd!(sh, "{diff} -u {a} {b}"), crate::process::Env::client()).ok()?;
        (out.code == Some(1)).then(|| Redactor::new().redact(&out.stdout))
    })();
    out.unwrap_or_else(|| {
        let only = |x: &str, y: &str, mark: char| -> String {
            let other: std::collections::HashSet<&str> = y.lines().collect();
            x.lines().filter(|l| !other.contains(l)).map(|l| format!("{mark}{l}\n")).collect()
        };
        format!("--- {a}\n+++ {b}\n{}{}", only(before, after, '-'), only(after, before, '+'))
    })
}

/// What the rollbacks left different, by the migration it most likely belongs to: each object of
/// a snapshot line found only before or only after (`still there` / `gone or changed`), given to
/// the oldest of `migrations` whose SQL names it (the one that created or changed it): by its
/// table and its own name together first, then its table, then its own name. Objects no migration
/// names are given to none (`None`).
pub fn leftovers(before: &str, after: &str, migrations: &[&Migration]) -> Vec<(Option<usize>, Vec<String>)> {
    let set = |text: &str| text.lines().map(str::to_string).collect::<std::collections::BTreeSet<_>>();
    let (b, a) = (set(before), set(after));
    let texts: Vec<String> = migrations.iter().map(|m| m.sql.script.text.to_ascii_lowercase()).collect();
    let names = |t: &str, name: &str| {
        let name = name.to_ascii_lowercase();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        name.len() >= 3
            && t.match_indices(&name)
                .any(|(at, _)| !ident(t[..at].chars().next_back()) && !ident(t[at + name.len()..].chars().next()))
    };
    let mut by: Vec<(Option<usize>, Vec<String>)> = Vec::new();
    for (line, state) in
        a.difference(&b).map(|l| (l, "still there")).chain(b.difference(&a).map(|l| (l, "gone or changed")))
    {
        let Some(object) = object(line) else { continue };
        let owner = object
            .search
            .iter()
            .find_map(|all| texts.iter().position(|t| !all.is_empty() && all.iter().all(|n| names(t, n))));
        let what = format!("{} {} ({state})", object.kind, object.shown);
        match by.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, list)) if !list.contains(&what) => list.push(what),
            Some(_) => {}
            None => by.push((owner, vec![what])),
        }
    }
    // Whole objects before their parts: a table left behind before its columns.
    let rank = |w: &String| {
        ["relation", "view", "function", "type", "schema", "sequence"]
            .iter()
            .position(|k| w.starts_with(k))
            .unwrap_or(9)
    };
    for (_, list) in &mut by {
        list.sort_by_key(rank);
    }
    by
}

/// A snapshot line's object: its kind, its name as shown, and the names to look for in the SQL,
/// best first.
struct Object<'a> {
    kind: &'a str,
    shown: String,
    search: Vec<Vec<String>>,
}

fn object(line: &str) -> Option<Object<'_>> {
    let mut words = line.split_whitespace();
    let kind = words.next()?;
    let unqualified = |ident: &str| -> Vec<String> {
        let ident = ident.split('(').next().unwrap_or(ident).trim_end_matches(':');
        let parts: Vec<String> = ident.split('.').map(|p| p.trim_matches('"').to_string()).collect();
        if parts.len() > 1 {
            parts[1..].to_vec()
        } else {
            parts
        }
    };
    let after = |word: &str| {
        line.split_whitespace().skip_while(|w| *w != word).nth(1).map(|w| unqualified(w.trim_end_matches(':')))
    };
    let (own, table): (Vec<String>, Option<Vec<String>>) = match kind {
        "comment" | "default" | "event" => return None,
        "index" => (unqualified(words.skip_while(|w| *w != "INDEX").nth(1)?), after("ON")),
        "constraint" => (unqualified(words.next()?), after("on")),
        "policy" | "rule" => {
            let name = words.next()?.to_string();
            (vec![name], after("on"))
        }
        "column" => {
            let parts = unqualified(words.next()?);
            let table = parts.first().cloned().map(|t| vec![t]);
            (parts, table)
        }
        _ => (unqualified(words.next()?), None),
    };
    let own_name = own.last().cloned()?;
    let shown = own.join(".");
    let mut search = Vec::new();
    if let Some(table) = table.and_then(|t| t.last().cloned()) {
        search.push(vec![table.clone(), own_name.clone()]);
        search.push(vec![table]);
    }
    search.push(vec![own_name.clone()]);
    // A generated name (`t_id_seq`, `t_pkey`, `t_email_key`) starts with its table's.
    let mut prefix = own_name.as_str();
    while let Some((head, _)) = prefix.rsplit_once('_') {
        prefix = head;
        search.push(vec![prefix.to_string()]);
    }
    Some(Object { kind, shown, search })
}
