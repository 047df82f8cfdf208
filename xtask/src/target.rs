//! Choosing and opening the target (SPEC §3–4): `local` (a throwaway cluster), `staging` (the DSN
//! from the vault files) or `url` (`--db-url` or `$DATABASE_URL`). Staging and url pass the guards
//! of [`crate::dsn`] first; their DSN is used exactly as given.

use std::path::Path;

use anyhow::Result;

use crate::config::Config;
use crate::dsn;
use crate::exit;
use crate::local::{binaries, LocalCluster};
use crate::redact::Redactor;
use crate::summary;
use crate::vault;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Local,
    Staging,
    Url,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Staging => "staging",
            Kind::Url => "url",
        }
    }
}

/// An open target: the DSN to hand to psql and the CLI, and what keeps it alive.
pub struct Target {
    pub kind: Kind,
    pub dsn: String,
    pub redactor: Redactor,
    pub host: String,
    pub database: String,
    /// `SUPABASE_SERVICE_KEY` from the vault, for the children that need it (never logged).
    pub service_key: Option<String>,
    /// The throwaway cluster of a local target; dropping the target stops it.
    pub cluster: Option<LocalCluster>,
}

impl Target {
    pub fn summary(&self) -> summary::Target {
        summary::Target { kind: self.kind.as_str(), host: self.host.clone(), database: self.database.clone() }
    }
}

/// Which target, and the reason the first line of output gives.
pub fn choose(flag: Option<&str>, workdir: &Path, config: &Config) -> (Kind, String) {
    match flag {
        Some("local") => (Kind::Local, "--target local".into()),
        Some("staging") => (Kind::Staging, "--target staging".into()),
        Some(_) => (Kind::Url, "--target url".into()),
        None => {
            let found: Vec<&String> = config.env_files.iter().filter(|f| workdir.join(f).is_file()).collect();
            if found.is_empty() {
                (Kind::Local, format!("no staging vault files ({}) under the workdir", config.env_files.join(", ")))
            } else {
                (
                    Kind::Staging,
                    format!(
                        "staging vault files found: {}",
                        found.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )
            }
        }
    }
}

/// Open the target: start the local cluster, or read and guard the DSN.
pub fn open(
    kind: Kind,
    workdir: &Path,
    config: &Config,
    db_url: Option<&str>,
    superuser_postgres: bool,
) -> Result<Target> {
    if superuser_postgres && kind != Kind::Local {
        return Err(exit::cannot_run(
            "--superuser-postgres changes the throwaway local cluster only; drop it for --target staging or url",
        ));
    }
    match kind {
        Kind::Local => {
            let server = binaries::ensure_server_with_pgtap()?;
            let cluster = LocalCluster::start(&server)?;
            if superuser_postgres {
                cluster.make_postgres_superuser()?;
            }
            Ok(Target {
                kind,
                dsn: cluster.dsn(),
                redactor: Redactor::new(),
                host: "127.0.0.1".into(),
                database: "postgres".into(),
                service_key: None,
                cluster: Some(cluster),
            })
        }
        Kind::Staging => {
            // Each vault file as the runbook sources it, in order; a missing service key file may be
            // replaced by a key fetched just in time with the access token (runbook §1).
            let mut vars = std::collections::BTreeMap::new();
            let mut missing = Vec::new();
            for file in &config.env_files {
                if workdir.join(file).is_file() {
                    vars.extend(vault::read(workdir, std::slice::from_ref(file))?);
                } else {
                    missing.push(file.clone());
                }
            }
            let first = config.env_files.first().map_or("the vault files", String::as_str);
            let dsn = vars.get("DATABASE_URL").filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
                if missing.iter().any(|m| m == first) {
                    exit::cannot_run(format!(
                        "reading {first}: No such file or directory (the staging vault file; fetch it from the vault)"
                    ))
                } else {
                    exit::cannot_run(format!("reading {first}: no DATABASE_URL (source of the pooler DSN)"))
                }
            })?;
            let mut service_key = vars.get("SUPABASE_SERVICE_KEY").cloned();
            if let Some(file) = missing.first() {
                service_key = Some(just_in_time_service_key(workdir, &dsn).ok_or_else(|| {
                    exit::cannot_run(format!(
                        "reading {file}: No such file or directory (the staging vault file; fetch it from the vault)"
                    ))
                })??);
            }
            guarded(kind, &dsn, service_key, config, "the DSN from the staging vault")
        }
        Kind::Url => {
            let dsn = db_url
                .map(str::to_string)
                .or_else(|| std::env::var("DATABASE_URL").ok())
                .filter(|d| !d.is_empty())
                .ok_or_else(|| exit::cannot_run("--target url needs --db-url URL or $DATABASE_URL"))?;
            let service_key = std::env::var("SUPABASE_SERVICE_KEY").ok().filter(|k| !k.is_empty());
            guarded(kind, &dsn, service_key, config, "the DSN")
        }
    }
}

/// With no service key file: `$SUPABASE_ACCESS_TOKEN` or `~/.supabase/access-token`, the project
/// ref from the DSN and the Supabase CLI give the key, kept in memory. `None` when any is missing.
fn just_in_time_service_key(workdir: &Path, dsn: &str) -> Option<Result<String>> {
    let token = std::env::var("SUPABASE_ACCESS_TOKEN").ok().filter(|t| !t.is_empty()).or_else(|| {
        let home = std::env::var_os("HOME")?;
        std::fs::read_to_string(Path::new(&home).join(".supabase/access-token")).ok().map(|t| t.trim().to_string())
    })?;
    let project_ref = dsn::project_ref(&dsn::parse(dsn).ok()?)?;
    let cli = crate::supabase_cli::SupabaseCli::find_or_install(workdir)?;
    crate::progress!(
        "step 1 environment: no service key file; fetching the service_role key just in time (kept in memory)"
    );
    Some(cli.fetch_service_key(&project_ref, &token))
}

fn guarded(kind: Kind, dsn: &str, service_key: Option<String>, config: &Config, what: &str) -> Result<Target> {
    let mut redactor = Redactor::new().with_dsn(dsn);
    if let Some(key) = &service_key {
        redactor = redactor.with_secret(key);
    }
    let info = dsn::parse(dsn).map_err(|why| exit::cannot_run(format!("{what} is not a valid DSN: {why}")))?;
    let refusals = dsn::guard(&info, config);
    if !refusals.is_empty() {
        let list: Vec<String> = refusals.iter().map(|r| format!("  - {}", redactor.redact(r))).collect();
        return Err(exit::cannot_run(format!("refusing {what} (host {}):\n{}", info.host, list.join("\n"))));
    }
    Ok(Target {
        kind,
        dsn: dsn.to_string(),
        redactor,
        host: info.host,
        database: info.database,
        service_key,
        cluster: None,
    })
}
