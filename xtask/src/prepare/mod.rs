//! Everything a run needs before it touches a database or writes a file: the config, the tree
//! (every migration and rollback read and checked), the contract, the plan and its molecules, the
//! lint rules, and the programs (psql; the server and pgTAP for `local`; the Supabase CLI). Bad
//! input is refused here, with exit 2 (or 3 for a missing contract), before anything is written.

pub mod tree;

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::database::conn::Timeouts;
use crate::database::{self, Kind};
use crate::evidence::plan::{self, Molecule, Plan, MAX_ATTEMPTS};
use crate::exit;
use crate::progress;
use crate::text::config::Config;
use crate::text::extensions::{self, Local};
use crate::text::lint;
use crate::tools::server::{self, Server};
use crate::tools::supabase_cli::SupabaseCli;
use tree::{Tree, CONTRACT, TESTS};

/// The flags of `stage-rehearse`, `rls` and the step commands.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub target: Option<String>,
    pub db_url: Option<String>,
    pub molecules: Vec<String>,
    pub plan: Option<PathBuf>,
    pub no_atomic: bool,
    pub fail_fast: bool,
    pub superuser_postgres: bool,
    pub timeouts: Timeouts,
}

/// What a command needs prepared.
#[derive(Clone, Copy, Debug, Default)]
pub struct Needs {
    /// Halt (exit 3) without a contract.
    pub contract: bool,
    /// Read the data plan and choose its molecules.
    pub plan: bool,
    /// Find (or install) the Supabase CLI.
    pub cli: bool,
}

pub struct Prepared {
    pub workdir: PathBuf,
    pub started: DateTime<Utc>,
    pub flags: Flags,
    pub config: Config,
    pub kind: Kind,
    pub tree: Tree,
    pub contract: Vec<String>,
    pub plan: Option<PathBuf>,
    pub molecules: Vec<Molecule>,
    pub rules: lint::Rules,
    pub psql: PathBuf,
    pub server: Option<Server>,
    pub cli: Option<SupabaseCli>,
    /// For the summary: orphan rollbacks, stand-in extensions the project uses.
    pub warnings: Vec<String>,
    /// Why this target (the first line's reason).
    pub why: String,
    /// What the tool reads from `supabase/config.toml` (the project's Postgres major, the
    /// declarative schema's order), read once.
    pub project: crate::text::config::CliConfig,
}

/// Read and check everything; print the first line (the target and why).
pub fn prepare(workdir: PathBuf, flags: Flags, needs: Needs, default_target: Option<&str>) -> Result<Prepared> {
    prepare_as(workdir, flags, needs, default_target, "")
}

/// [`prepare`], with `note` added to the first line's reason (`; the contract alone, ...`).
pub fn prepare_as(
    workdir: PathBuf,
    flags: Flags,
    needs: Needs,
    default_target: Option<&str>,
    note: &str,
) -> Result<Prepared> {
    let started = Utc::now();
    let config = Config::load(&workdir)?;
    let flag = flags.target.as_deref().or(default_target.filter(|_| flags.db_url.is_none()));
    let (kind, mut why) = database::choose(flag, flags.db_url.is_some(), &workdir, &config)?;
    if flags.target.is_none() && flag.is_some() {
        why = "a throwaway PostgreSQL cluster with the Supabase surface; the default of this command, the check before a PR".into();
    }
    let note = if kind == Kind::Local { "" } else { note };
    progress!("target: {} ({why}{note})", kind.as_str());
    let why = format!("{why}{note}");
    let tree = Tree::load(&workdir)?;
    let contract = tree::contract_files(&workdir)?;
    if needs.contract && contract.is_empty() {
        return Err(exit::halt(format!(
            "no RLS contract ({CONTRACT}) and no {TESTS}/ under {}: escalate to the manager (runbook step 6: if the \
             contract file is missing, halt)",
            workdir.display()
        )));
    }
    let rules = lint::Rules::from_config(&config.lint)?;
    let (plan, molecules) = if needs.plan {
        let path = plan::path(flags.plan.as_deref());
        match Plan::load(&path)? {
            Some(p) => {
                let files: Vec<String> = tree.migrations.iter().map(|m| m.file().to_string()).collect();
                let molecules = p.select(&flags.molecules, &files)?;
                (Some(path), molecules)
            }
            None if !flags.molecules.is_empty() => {
                return Err(exit::cannot_run(format!("--molecule needs a data plan; none at {}", path.display())))
            }
            None => (None, Vec::new()),
        }
    } else {
        (None, Vec::new())
    };
    let psql = crate::tools::find_client("psql")?;
    let mut warnings: Vec<String> =
        tree.orphan_rollbacks.iter().map(|f| format!("{f} rolls back no migration in the tree")).collect();
    let project = crate::text::config::cli_config(&workdir)?;
    let project_major = project.major_version;
    let server = if kind == Kind::Local {
        let used = extensions_used(&workdir, &tree, &contract);
        let server = server::ensure_local(&used, project_major)?;
        if let Some(warning) = server::major_mismatch(&server, project_major) {
            progress!("note: {warning}");
            warnings.push(warning);
        }
        for (name, file) in &used {
            if let Some(Local::StandIn(lacks)) = extensions::supabase(name) {
                if server.extension_version(name).is_none() {
                    let warning = format!(
                        "{name} ({file} uses it) is a stand-in on the local target: {lacks}; staging has the real one"
                    );
                    progress!("note: {warning}");
                    warnings.push(warning);
                }
            }
        }
        Some(server)
    } else {
        None
    };
    let cli = if needs.cli { SupabaseCli::find_or_install(&workdir) } else { None };
    Ok(Prepared {
        workdir,
        started,
        flags,
        config,
        kind,
        tree,
        contract,
        plan,
        molecules,
        rules,
        psql,
        server,
        cli,
        warnings,
        why,
        project,
    })
}

/// `(extension, first file that uses it)` for every extension the migrations, the seed and the
/// tests create or call into (see [`extensions::used_in`]).
pub fn extensions_used(workdir: &Path, tree: &Tree, contract: &[String]) -> Vec<(String, String)> {
    let mut files: Vec<(String, std::borrow::Cow<str>)> =
        tree.migrations.iter().map(|m| (m.sql.rel.clone(), m.sql.script.text.as_str().into())).collect();
    for rel in std::iter::once(tree::SEED).chain(contract.iter().map(String::as_str)) {
        if let Ok(text) = std::fs::read_to_string(workdir.join(rel)) {
            files.push((rel.to_string(), text.into()));
        }
    }
    let mut used: Vec<(String, String)> = Vec::new();
    for (rel, text) in &files {
        for name in extensions::used_in(text) {
            if !used.iter().any(|(n, _)| *n == name) {
                used.push((name, rel.clone()));
            }
        }
    }
    used
}

impl Prepared {
    /// A molecule past its three attempts is marked `blocked` in the plan and the run halts (exit 3).
    pub fn refuse_spent_molecules(&self) -> Result<()> {
        let Some(spent) = self.molecules.iter().find(|m| m.attempt > MAX_ATTEMPTS) else { return Ok(()) };
        let path = self.plan.as_ref().expect("molecules come from a plan");
        plan::update(
            path,
            &[plan::Change { id: spent.id.clone(), status: "blocked", attempts: None, evidence: vec![] }],
        )?;
        Err(exit::halt(format!(
            "molecule `{}` has used its {MAX_ATTEMPTS} attempts; marked blocked in {}: escalate to the manager",
            spent.id,
            path.display()
        )))
    }

    /// `(path relative to the workdir, sha256)` of every input rehearsed: migrations, rollbacks,
    /// contract and test files.
    pub fn inputs(&self) -> Vec<(String, String)> {
        let mut inputs = self.tree.hashes();
        for file in &self.contract {
            if let Ok(hash) = crate::evidence::manifest::sha256_file(&self.workdir.join(file)) {
                inputs.push((file.clone(), hash));
            }
        }
        inputs
    }
}
