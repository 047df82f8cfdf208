//! `cargo xtask doctor`: every prerequisite of the runbook with its version and, where it is
//! missing, the fix. Exit 0 when everything the local rehearsal needs is present, 2 otherwise.

use std::path::Path;

use anyhow::Result;

use super::Ctx;
use crate::exit::Exit;
use crate::out;
use crate::prepare::tree::{CONTRACT, MIGRATIONS, TESTS};
use crate::text::extensions::{self, Local};
use crate::tools::server;
use crate::tools::supabase_cli::{SupabaseCli, MIN_VERSION};
use crate::tools::{self, install_hint};

const VAULT_FILES: [&str; 2] =
    ["vault/occ/supabase/database_url_staging.env", "vault/occ/supabase/service_key_staging.env"];
const DOCS: [&str; 2] = ["docs/runbooks/agent_startup_checklist.md", "docs/directions/data.md"];

enum Level {
    /// Needed by the local rehearsal: its absence fails the doctor.
    Required,
    /// Needed for some commands or targets only: reported, not failed.
    Optional,
    /// Said, never failed: a stand-in and what it does not do.
    Note,
}

struct Check {
    name: &'static str,
    level: Level,
    found: Result<String, String>,
}

pub fn run(ctx: &Ctx) -> Result<Exit> {
    let w = &ctx.workdir;
    let mut checks = client_checks();
    checks.extend(server_checks(w));
    checks.push(cli_check(w));
    checks.extend(tree_checks(w));
    print(&checks)
}

/// psql and pg_dump, with their versions.
fn client_checks() -> Vec<Check> {
    let mut checks = Vec::new();
    for client in ["psql", "pg_dump"] {
        checks.push(Check {
            name: client,
            level: if client == "psql" { Level::Required } else { Level::Optional },
            found: tools::find_client(client)
                .map(|p| {
                    let version = tools::version_line(&p);
                    let note = if client == "psql" && !tools::client_chains(&version) {
                        "; older than 15, it shows only the last result of a query string: files run statement by \
                         statement, one round trip each (install postgresql-client-15 or later for one per chain)"
                    } else {
                        ""
                    };
                    format!("{version} ({}){note}", p.display())
                })
                .map_err(|e| format!("{e:#}")),
        });
    }
    checks
}

/// The server (of the major `supabase/config.toml` names when there is one), pgTAP, pgextwlist
/// and how the local target provides each Supabase extension.
fn server_checks(w: &std::path::Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let project_major = crate::text::config::cli_config(w).ok().and_then(|c| c.major_version);
    let server = server::find_server_of(project_major);
    checks.push(Check {
        name: "postgres server",
        level: Level::Required,
        found: server.as_ref().map(|s| format!("{} ({})", s.version, s.bindir.display())).map_err(|e| format!("{e:#}")),
    });
    if let (Some(want), Ok(s)) = (project_major, &server) {
        checks.push(Check {
            name: "postgres major",
            level: Level::Optional,
            found: if s.major == want {
                Ok(format!("{want}, as supabase/config.toml says the project runs"))
            } else {
                Err(format!(
                    "the project runs {want} (supabase/config.toml [db] major_version), the local target rehearses on {}: {}",
                    s.major,
                    server::major_mismatch(s, Some(want)).map_or(String::new(), |w| {
                        w.split("; install ").nth(1).map_or(String::new(), |fix| format!("install {fix}"))
                    })
                ))
            },
        });
    }
    checks.push(Check {
        name: "pgTAP",
        level: Level::Required,
        found: match &server {
            Ok(s) => s.pgtap_version().map(|v| format!("pgTAP {v}")).ok_or_else(|| {
                format!(
                    "not installed for PostgreSQL {}; fix: {}",
                    s.major,
                    install_hint(&format!("postgresql-{}-pgtap", s.major))
                )
            }),
            Err(_) => Err("needs the server first".to_string()),
        },
    });
    if let Ok(s) = &server {
        let lib = s.pkglibdir.join("pgextwlist.so");
        checks.push(Check {
            name: "pgextwlist",
            level: Level::Required,
            found: if lib.is_file() {
                Ok(format!("lets postgres create extensions as on Supabase ({})", lib.display()))
            } else {
                Err(format!("not installed; fix: {}", install_hint(&format!("postgresql-{}-pgextwlist", s.major))))
            },
        });
        checks.extend(extension_checks(s));
    }
    checks
}

/// The Supabase CLI and its flavour.
fn cli_check(w: &std::path::Path) -> Check {
    let (min_major, min_minor) = MIN_VERSION;
    Check {
        name: "Supabase CLI",
        level: Level::Optional,
        found: match SupabaseCli::find(w) {
            Some(cli) if cli.is_supported() => {
                Ok(format!("{} ({}) {}", cli.version_string(), cli.flavour(), cli.path.display()))
            }
            Some(cli) => Err(format!(
                "{} is older than {min_major}.{min_minor}; fix: npm install --no-save (installs the version pinned in package.json)",
                cli.version_string()
            )),
            None => Err(
                "not found (inventory falls back to SQL); fix: npm install --no-save (installs the version pinned in package.json)"
                    .into(),
            ),
        },
    }
}

/// The tree, the runbook's documents and the vault files.
fn tree_checks(w: &std::path::Path) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(file_check(
        "migrations",
        Level::Required,
        w,
        &[MIGRATIONS],
        "create supabase/migrations/ with <version>_<name>.sql files",
    ));
    checks.push(file_check(
        "RLS contract",
        Level::Required,
        w,
        &[CONTRACT, TESTS],
        "add supabase/rls_tests.sql or supabase/tests/ (without either the rehearsal halts: escalate to the manager)",
    ));
    for doc in DOCS {
        checks.push(file_check(
            "doc",
            Level::Optional,
            w,
            &[doc],
            "the rehearsal warns without it; restore it from git",
        ));
    }
    for vault in VAULT_FILES {
        checks.push(file_check(
            "staging vault",
            Level::Optional,
            w,
            &[vault],
            "needed for --target staging only: fetch it from the vault",
        ));
    }

    checks
}

/// Each check on a line; exit 2 when a required one is missing.
fn print(checks: &[Check]) -> Result<Exit> {
    let mut missing = 0;
    for check in checks {
        let (mark, text) = match (&check.found, &check.level) {
            (Ok(found), _) => ("ok  ", found.clone()),
            (Err(why), Level::Required) => {
                missing += 1;
                ("MISS", why.clone())
            }
            (Err(why), Level::Optional) => ("warn", why.clone()),
            (Err(why), Level::Note) => ("note", why.clone()),
        };
        out::line(&format!("{mark}  {:<16} {text}", check.name))?;
    }
    if missing > 0 {
        out::err_line(&format!("doctor: {missing} required prerequisite(s) missing; run the fixes above (as root on Debian, `cargo xtask rls` installs the PostgreSQL packages itself)"));
        return Ok(Exit::CannotRun);
    }
    out::err_line("doctor: everything the local rehearsal needs is present");
    Ok(Exit::Passed)
}

/// How the local target provides Supabase's extensions on this machine: how many are real, each
/// stand-in and what it does not do, what a migration would have installed, what is missing.
fn extension_checks(s: &server::Server) -> Vec<Check> {
    let mut real = 0;
    let (mut on_demand, mut missing, mut checks) = (Vec::new(), Vec::new(), Vec::new());
    for (name, local) in extensions::SUPABASE {
        match local {
            _ if s.extension_version(name).is_some() => real += 1,
            Local::StandIn(lacks) => checks.push(Check {
                name: "stand-in",
                level: Level::Note,
                found: Err(format!("{name}: {lacks} (on staging it is real)")),
            }),
            Local::Package(suffix) => on_demand.push(format!("{name} (postgresql-{}-{suffix})", s.major)),
            Local::Pgdg(suffix) => checks.push(Check {
                name: "extensions",
                level: Level::Note,
                found: Err(format!(
                    "{name}: from PostgreSQL's own apt repository, not in this machine's package lists: {}",
                    extensions::pgdg_commands(&format!("postgresql-{}-{suffix}", s.major))
                )),
            }),
            Local::Contrib | Local::Missing => missing.push(*name),
        }
    }
    let total = extensions::SUPABASE.len();
    let mut out = vec![Check {
        name: "extensions",
        level: Level::Optional,
        found: Ok(format!("{real} of the {total} Supabase offers are real on the local target")),
    }];
    if !on_demand.is_empty() {
        out.push(Check {
            name: "extensions",
            level: Level::Note,
            found: Err(format!("installed when a migration creates them: {}", on_demand.join(", "))),
        });
    }
    out.append(&mut checks);
    if !missing.is_empty() {
        out.push(Check {
            name: "extensions",
            level: Level::Note,
            found: Err(format!(
                "not available on the local target (a migration creating one fails: rehearse it on staging): {}",
                missing.join(", ")
            )),
        });
    }
    out
}

fn file_check(name: &'static str, level: Level, workdir: &Path, any_of: &[&str], fix: &str) -> Check {
    let found = any_of.iter().find(|p| workdir.join(p).exists());
    Check {
        name,
        level,
        found: found.map(|p| p.to_string()).ok_or_else(|| format!("{} missing; fix: {fix}", any_of.join(" or "))),
    }
}
