//! Security advisors after the forward apply: SQL of our own against the catalog, in the spirit of
//! Supabase's database linter. Each finding has a severity (errors fail the run) and, for tables,
//! the migration and line that created the object when the tree says so.

use anyhow::Result;

use super::Db;
use crate::findings::Finding;
use crate::tree::Migration;

struct Advisor {
    class: &'static str,
    severity: &'static str,
    /// One object per row: its name, then a detail.
    sql: &'static str,
    message: &'static str,
    hint: &'static str,
}

const EXPOSED: &str = "'public'";

const ADVISORS: &[Advisor] = &[
    Advisor {
        class: "rls_disabled",
        severity: "error",
        sql: "select c.relname, '' from pg_class c join pg_namespace n on n.oid = c.relnamespace \
              where n.nspname in (EXPOSED) and c.relkind in ('r', 'p') and not c.relrowsecurity order by 1",
        message: "table public.{} is exposed to the API with row level security off",
        hint: "add `alter table public.{} enable row level security;` and its policies to {file}",
    },
    Advisor {
        class: "rls_enabled_no_policy",
        severity: "warning",
        sql: "select c.relname, '' from pg_class c join pg_namespace n on n.oid = c.relnamespace \
              where n.nspname in (EXPOSED) and c.relkind in ('r', 'p') and c.relrowsecurity \
              and not exists (select 1 from pg_policy p where p.polrelid = c.oid) order by 1",
        message: "table public.{} has row level security on but no policy: no API role can read or write it",
        hint: "add the policies public.{} needs, or say in {file} that only service_role uses it",
    },
    Advisor {
        class: "policy_exists_rls_disabled",
        severity: "error",
        sql: "select distinct c.relname, '' from pg_policy p join pg_class c on c.oid = p.polrelid \
              join pg_namespace n on n.oid = c.relnamespace where n.nspname in (EXPOSED) and not c.relrowsecurity order by 1",
        message: "table public.{} has policies but row level security is off, so they do nothing",
        hint: "add `alter table public.{} enable row level security;` to {file}",
    },
    Advisor {
        class: "function_search_path_mutable",
        severity: "warning",
        sql: "select p.proname, pg_get_function_identity_arguments(p.oid) from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
              where n.nspname in (EXPOSED) and p.prokind in ('f', 'p') \
              and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%') \
              and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e') order by 1",
        message: "function public.{} has a mutable search_path",
        hint: "add `set search_path = ''` to public.{} and qualify the names it uses",
    },
    Advisor {
        class: "security_definer_view",
        severity: "error",
        sql: "select c.relname, '' from pg_class c join pg_namespace n on n.oid = c.relnamespace \
              where n.nspname in (EXPOSED) and c.relkind = 'v' \
              and not coalesce(c.reloptions @> array['security_invoker=true'] or c.reloptions @> array['security_invoker=on'], false) order by 1",
        message: "view public.{} runs with its owner's rights (no security_invoker), bypassing the caller's RLS",
        hint: "create public.{} `with (security_invoker = true)`",
    },
    Advisor {
        class: "auth_users_exposed",
        severity: "error",
        sql: "select distinct v.relname, '' from pg_depend d join pg_rewrite r on r.oid = d.objid \
              join pg_class v on v.oid = r.ev_class join pg_namespace n on n.oid = v.relnamespace \
              where d.refobjid = 'auth.users'::regclass and n.nspname in (EXPOSED) and v.oid <> 'auth.users'::regclass order by 1",
        message: "view public.{} exposes auth.users to the API",
        hint: "drop public.{}, or move it out of an exposed schema and grant it to service_role only",
    },
    Advisor {
        class: "anon_policy_always_true",
        severity: "warning",
        sql: "select c.relname, p.polname from pg_policy p join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace \
              where n.nspname in (EXPOSED) and (p.polroles = '{0}' or exists (select 1 from pg_roles r where r.oid = any(p.polroles) and r.rolname = 'anon')) \
              and (pg_get_expr(p.polqual, p.polrelid) = 'true' or pg_get_expr(p.polwithcheck, p.polrelid) = 'true') order by 1",
        message: "policy on public.{} lets anon through unconditionally (USING or WITH CHECK is true)",
        hint: "narrow the policy on public.{} or drop anon from it, unless the table is meant to be public",
    },
];

/// Run every advisor in one session (through a pooler each new session is a TLS handshake and a
/// SCRAM exchange): each query's rows start with its advisor's class. A query that fails (a catalog
/// difference) is skipped, not fatal.
pub fn run(db: &Db, migrations: &[Migration]) -> Result<Vec<Finding>> {
    let script: String = ADVISORS
        .iter()
        .map(|a| format!("select '{}', * from ({}) found;\n", a.class, a.sql.replace("EXPOSED", EXPOSED)))
        .collect();
    let out = crate::process::Cmd::new(&db.psql)
        .arg(&db.dsn)
        .args(["-X", "-q", "-A", "-t", "-F", "\t", "-f", "-"])
        .stdin(script)
        .run(&db.redactor, None)?;
    let mut findings = Vec::new();
    for row in out.text.lines() {
        let mut cells = row.split('\t');
        let (Some(class), Some(name), detail) = (cells.next(), cells.next(), cells.next().unwrap_or("")) else {
            continue;
        };
        let Some(advisor) = ADVISORS.iter().find(|a| a.class == class) else { continue };
        let object = match (advisor.class, detail) {
            ("function_search_path_mutable", args) => format!("{name}({args})"),
            (_, "") => name.to_string(),
            (_, detail) => format!("{name} ({detail})"),
        };
        let (file, line) = created_in(db, migrations, name).map_or((None, None), |(f, l)| (Some(f), Some(l)));
        findings.push(Finding {
            class: advisor.class,
            severity: advisor.severity,
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
    Ok(findings)
}

/// The migration and line whose CREATE made `name` (table, view or function).
fn created_in(db: &Db, migrations: &[Migration], name: &str) -> Option<(String, u32)> {
    for m in migrations {
        let Ok(text) = std::fs::read_to_string(db.workdir.join(&m.file)) else { continue };
        for (n, line) in text.lines().enumerate() {
            let l = line.to_ascii_lowercase();
            let names_it = [
                format!("public.{name} "),
                format!("public.{name}("),
                format!(" {name} ("),
                format!("public.{name}\n"),
            ]
            .iter()
            .any(|p| format!("{l}\n").contains(p.as_str()));
            if l.contains("create") && names_it {
                return Some((m.file.clone(), n as u32 + 1));
            }
        }
    }
    None
}
