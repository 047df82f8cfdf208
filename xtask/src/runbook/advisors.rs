//! Security advisors after the forward apply: SQL of our own against the catalog, in the spirit of
//! Supabase's database linter, in one query (one round trip). Each finding has a severity (errors
//! fail the run) and, for tables, the migration and line that created the object when the tree
//! says so. A project sets each advisor's severity in `supabase/rehearsal.toml` `[advisors]`
//! (`error`, `warning` or `off`) and lists objects an advisor leaves alone in `[advisors.exclude]`.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::database::Target;
use crate::prepare::tree::Migration;
use crate::process::psql::Unit;
use crate::text::config::{Level, Setting};
use crate::text::findings::{Class, Finding, Severity};

struct Advisor {
    class: Class,
    severity: Severity,
    /// One object per row: its schema, its name, then a detail.
    sql: &'static str,
    message: &'static str,
    hint: &'static str,
}

/// The exposed schemas as a subquery: the project's `[lint] exposed_schemas` (`{CONFIGURED}`),
/// and those PostgREST serves, from `pgrst.db_schemas` set on `authenticator`, as Supabase's
/// own linter reads them.
const EXPOSED: &str = "select s from unnest(array[{CONFIGURED}]::text[]) s union \
    select btrim(x) from pg_db_role_setting rs join pg_roles r on r.oid = rs.setrole \
    cross join unnest(rs.setconfig) c cross join regexp_split_to_table(substr(c, 18), ',') x \
    where r.rolname = 'authenticator' and c like 'pgrst.db\\_schemas=%'";
/// Objects an extension created (hypopg's views in `public`, say) are the extension's, not the
/// project's: as Supabase's advisors, these pass them over.
const NOT_MEMBER: &str = "and not exists (select 1 from pg_depend x where x.objid = c.oid and x.deptype = 'e')";
const ADVISORS: &[Advisor] = &[
    Advisor {
        class: Class::RlsDisabled,
        severity: Severity::Error,
        sql: "select n.nspname, c.relname, '' from pg_class c join pg_namespace n on n.oid = c.relnamespace \
              where n.nspname in (EXPOSED) and c.relkind in ('r', 'p') and not c.relrowsecurity NOT_MEMBER",
        message: "table {} is exposed to the API with row level security off",
        hint: "add `alter table {} enable row level security;` and its policies to {file}",
    },
    Advisor {
        class: Class::RlsEnabledNoPolicy,
        severity: Severity::Warning,
        sql: "select n.nspname, c.relname, '' from pg_class c join pg_namespace n on n.oid = c.relnamespace \
              where n.nspname in (EXPOSED) and c.relkind in ('r', 'p') and c.relrowsecurity \
              and not exists (select 1 from pg_policy p where p.polrelid = c.oid) NOT_MEMBER",
        message: "table {} has row level security on but no policy: no API role can read or write it",
        hint: "add the policies {} needs, or say in {file} that only service_role uses it",
    },
    Advisor {
        class: Class::PolicyExistsRlsDisabled,
        severity: Severity::Error,
        sql: "select distinct n.nspname, c.relname, '' from pg_policy p join pg_class c on c.oid = p.polrelid \
              join pg_namespace n on n.oid = c.relnamespace where n.nspname in (EXPOSED) and not c.relrowsecurity NOT_MEMBER",
        message: "table {} has policies but row level security is off, so they do nothing",
        hint: "add `alter table {} enable row level security;` to {file}",
    },
    Advisor {
        class: Class::FunctionSearchPathMutable,
        severity: Severity::Warning,
        sql: "select n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
              where n.nspname in (EXPOSED) and p.prokind in ('f', 'p') \
              and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%') \
              and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')",
        message: "function {} has a mutable search_path",
        hint: "add `set search_path = ''` to {} and qualify the names it uses",
    },
    Advisor {
        class: Class::SecurityDefinerView,
        severity: Severity::Error,
        sql: "select n.nspname, c.relname, '' from pg_class c join pg_namespace n on n.oid = c.relnamespace \
              where n.nspname in (EXPOSED) and c.relkind = 'v' \
              and not coalesce(c.reloptions @> array['security_invoker=true'] or c.reloptions @> array['security_invoker=on'], false) NOT_MEMBER",
        message: "view {} runs with its owner's rights (no security_invoker), bypassing the caller's RLS",
        hint: "create {} `with (security_invoker = true)`",
    },
    Advisor {
        class: Class::AuthUsersExposed,
        severity: Severity::Error,
        sql: "select distinct n.nspname, v.relname, '' from pg_depend d join pg_rewrite r on r.oid = d.objid \
              join pg_class v on v.oid = r.ev_class join pg_namespace n on n.oid = v.relnamespace \
              where d.refobjid = 'auth.users'::regclass and n.nspname in (EXPOSED) and v.oid <> 'auth.users'::regclass",
        message: "view {} exposes auth.users to the API",
        hint: "drop {}, or move it out of an exposed schema and grant it to service_role only",
    },
    Advisor {
        class: Class::AnonPolicyAlwaysTrue,
        severity: Severity::Warning,
        sql: "select n.nspname, c.relname, p.polname from pg_policy p join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace \
              where n.nspname in (EXPOSED) and (p.polroles = '{0}' or exists (select 1 from pg_roles r where r.oid = any(p.polroles) and r.rolname = 'anon')) \
              and (pg_get_expr(p.polqual, p.polrelid) = 'true' or pg_get_expr(p.polwithcheck, p.polrelid) = 'true')",
        message: "policy on {} lets anon through unconditionally (USING or WITH CHECK is true)",
        hint: "narrow the policy on {} or drop anon from it, unless the table is meant to be public",
    },
];

/// The advisors as a project configured them: severities and exclusions.
pub struct Advisors {
    levels: BTreeMap<Class, Option<Severity>>,
    exclude: BTreeMap<Class, Vec<String>>,
    /// `[lint] exposed_schemas`, as SQL literals.
    exposed: String,
}

impl Advisors {
    pub fn from_config(levels: &[Setting], exclude: &[Setting], exposed: &[String]) -> Result<Advisors> {
        let find = |s: &Setting| {
            ADVISORS.iter().find(|a| a.class.as_str() == s.key).ok_or_else(|| {
                let names: Vec<&str> = ADVISORS.iter().map(|a| a.class.as_str()).collect();
                s.error(&format!("is not an advisor (advisors: {})", names.join(", ")))
            })
        };
        let exposed = exposed.iter().map(|s| format!("'{}'", s.replace('\'', "''"))).collect::<Vec<_>>().join(", ");
        let mut out = Advisors { levels: BTreeMap::new(), exclude: BTreeMap::new(), exposed };
        for s in levels {
            let advisor = find(s)?;
            let level = match Level::of(s)? {
                Level::Error => Some(Severity::Error),
                Level::Warning => Some(Severity::Warning),
                Level::Off => None,
            };
            out.levels.insert(advisor.class, level);
        }
        for s in exclude {
            let advisor = find(s)?;
            out.exclude.insert(advisor.class, s.strings()?);
        }
        Ok(out)
    }

    fn severity(&self, advisor: &Advisor) -> Option<Severity> {
        self.levels.get(&advisor.class).copied().unwrap_or(Some(advisor.severity))
    }

    /// Every enabled advisor in one query: one JSON line per object found, `[advisor, class,
    /// schema, name, detail]`. `None` when every advisor is off.
    pub fn query(&self) -> Option<String> {
        let enabled: Vec<&Advisor> = ADVISORS.iter().filter(|a| self.severity(a).is_some()).collect();
        if enabled.is_empty() {
            return None;
        }
        let query: Vec<String> = enabled
            .iter()
            .enumerate()
            .map(|(i, a)| {
                format!(
                    "select {i}, '{}', * from ({}) found",
                    a.class.as_str(),
                    a.sql
                        .replace("EXPOSED", &EXPOSED.replace("{CONFIGURED}", &self.exposed))
                        .replace("NOT_MEMBER", NOT_MEMBER)
                )
            })
            .collect();
        Some(format!(
            "select pg_catalog.json_build_array(u.i, u.class, u.s, u.n, u.d)::text from ({}) u(i, class, s, n, d) \
             order by u.i, u.s, u.n, u.d",
            query.join(" union all ")
        ))
    }

    /// Every enabled advisor in one query, one round trip.
    pub fn run(&self, target: &mut Target, migrations: &[Migration]) -> Result<Vec<Finding>> {
        let Some(query) = self.query() else { return Ok(Vec::new()) };
        let unit = Unit {
            before: "\\pset format unaligned\n\\pset tuples_only on".into(),
            body: format!("{query};"),
            after: "\\pset format aligned\n\\pset tuples_only off".into(),
        };
        target.doing("the security advisors (one catalog query)");
        let ran = target.run(&unit, None)?;
        if !ran.ok() {
            // A catalog difference (an older server) is not fatal: the advisors are skipped.
            return Ok(Vec::new());
        }
        let lines: Vec<String> = ran.text.lines().map(str::to_string).collect();
        Ok(self.findings(&lines, migrations))
    }

    /// The findings of [`Advisors::query`]'s lines, each object attributed to the migration that
    /// created it, when `migrations` say.
    pub fn findings(&self, lines: &[String], migrations: &[Migration]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for line in lines {
            let Ok((_, class, schema, name, detail)) =
                serde_json::from_str::<(u32, String, String, String, Option<String>)>(line)
            else {
                continue;
            };
            let (schema, name, detail) = (schema.as_str(), name.as_str(), detail.as_deref().unwrap_or_default());
            let Some(advisor) = ADVISORS.iter().find(|a| a.class.as_str() == class && self.severity(a).is_some())
            else {
                continue;
            };
            if self.exclude.get(&advisor.class).is_some_and(|ex| ex.iter().any(|e| e == &format!("{schema}.{name}"))) {
                continue;
            }
            let object = match (advisor.class, detail) {
                (Class::FunctionSearchPathMutable, args) => format!("{schema}.{name}({args})"),
                (_, "") => format!("{schema}.{name}"),
                (_, detail) => format!("{schema}.{name} ({detail})"),
            };
            let (file, line) = created_in(migrations, schema, name).map_or((None, None), |(f, l)| (Some(f), Some(l)));
            findings.push(Finding {
                class: advisor.class,
                severity: self.severity(advisor).expect("enabled"),
                sqlstate: None,
                message: advisor.message.replace("{}", &object),
                hint: advisor
                    .hint
                    .replace("{}", &object)
                    .replace("{file}", file.as_deref().unwrap_or("the migration that creates it")),
                file,
                line,
                // Read from the catalog, not from a log.
                log: None,
            });
        }
        findings
    }
}

/// The migration and line whose CREATE made `schema.name` (table, view or function).
fn created_in(migrations: &[Migration], schema: &str, name: &str) -> Option<(String, u32)> {
    for m in migrations {
        for (n, line) in m.sql.script.text.lines().enumerate() {
            let l = format!("{}\n", line.to_ascii_lowercase());
            let names_it = [
                format!("{schema}.{name} "),
                format!("{schema}.{name}("),
                format!(" {name} ("),
                format!("{schema}.{name}\n"),
            ]
            .iter()
            .any(|p| l.contains(p.as_str()));
            if l.contains("create") && names_it {
                return Some((m.file().to_string(), n as u32 + 1));
            }
        }
    }
    None
}
