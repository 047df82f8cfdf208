//! `cargo xtask`: the data staging apply runbook as commands. Parse flags, pick the workdir,
//! dispatch; each command lives in `cmd/` and returns its exit code (SPEC §9).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};

use xtask::exit::{self, Exit};
use xtask::{cmd, signals};

/// The flags `stage-rehearse` shares with the single-step commands.
fn target_args() -> Vec<Arg> {
    vec![
        Arg::new("target")
            .long("target")
            .value_name("TARGET")
            .value_parser(["local", "staging", "url"])
            .help("local: a throwaway cluster; staging: the DSN from the vault files; url: --db-url or $DATABASE_URL [default: staging when the vault files exist, else local]"),
        Arg::new("db-url").long("db-url").value_name("URL").help("The DSN for --target url (else $DATABASE_URL); used exactly as given"),
        Arg::new("molecule")
            .long("molecule")
            .value_name("ID")
            .action(ArgAction::Append)
            .help("Rehearse this molecule of the data plan (repeatable) [default: the plan's active molecules, else every pending migration]"),
        Arg::new("plan").long("plan").value_name("PATH").value_parser(value_parser!(PathBuf)).help("The data plan [default: $DATA_PLAN, else /tmp/data_plan.json]"),
        Arg::new("lock-timeout").long("lock-timeout").value_name("DURATION").value_parser(duration).help("SET lock_timeout on every session, e.g. 5s"),
        superuser_arg(),
        Arg::new("statement-timeout").long("statement-timeout").value_name("DURATION").value_parser(duration).help("SET statement_timeout on every session, e.g. 2min"),
    ]
}

fn superuser_arg() -> Arg {
    Arg::new("superuser-postgres")
        .long("superuser-postgres")
        .action(ArgAction::SetTrue)
        .help("On local: make postgres a superuser, as older Supabase images did (default: not, as on Supabase today)")
}

/// A Postgres duration: a number with an optional unit (ms, s, min, h, d).
fn duration(value: &str) -> Result<String, String> {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &value[digits.len()..];
    if digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit())
        || !["", "ms", "s", "min", "h", "d"].contains(&unit)
    {
        return Err("expected a number with an optional unit: 500ms, 5s, 2min, 1h".into());
    }
    Ok(value.to_string())
}

fn cli() -> Command {
    let json = Arg::new("json")
        .long("json")
        .action(ArgAction::SetTrue)
        .help("Print summary.json to stdout instead of the human summary");
    Command::new("xtask")
        .bin_name("cargo xtask")
        .about("Rehearse Supabase migrations the way the data staging apply runbook does, in one command")
        .after_help("Exit codes: 0 passed, 1 the run found failures, 2 could not run, 3 halted for escalation, 130 interrupted.")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(
            Arg::new("workdir")
                .long("workdir")
                .global(true)
                .value_name("DIR")
                .value_parser(value_parser!(PathBuf))
                .help("Repo root to work in: supabase/, artifacts/, docs/ are resolved under it [default: this workspace]"),
        )
        .subcommand(
            Command::new("stage-rehearse")
                .about("The whole rehearsal, runbook steps 0-8, into one rehearsal dir")
                .long_about(
                    "The whole rehearsal, runbook steps 0-8, into one rehearsal dir.\n\n\
                     0 feedback header; 1 target and guards; 2 connectivity (IPv4); 3 inventory with the Supabase CLI \
                     (else SQL); 4 schema snapshot, then each selected migration in one transaction with its history \
                     row; 5 each rollback of what applied, newest first, the schema compared with the snapshot, then \
                     re-apply; 6 the RLS contract; 7 inventory again, plan and attempts; 8 summary.json, SUMMARY.md, \
                     MANIFEST.sha256 and the hand-off in feedback/data/<date>.md.",
                )
                .args(target_args())
                .arg(Arg::new("no-atomic").long("no-atomic").action(ArgAction::SetTrue).help("Run each migration with the runbook's exact command (no transaction around the file)"))
                .arg(Arg::new("fail-fast").long("fail-fast").action(ArgAction::SetTrue).help("Stop applying at the first failed migration (the runbook's loop goes on)"))
                .arg(json.clone()),
        )
        .subcommand(
            Command::new("rls")
                .about("Run the RLS contract: on a throwaway local cluster after every migration (default), or alone on staging/url (runbook step 6)")
                .long_about(
                    "Run the RLS contract on a throwaway local cluster (runbook step 6).\n\n\
                     Starts a PostgreSQL cluster that looks like a Supabase database (no Docker), applies every \
                     migration in supabase/migrations/ in version order (each file in one transaction with its \
                     history row), applies supabase/seed.sql if present, then runs supabase/rls_tests.sql and every \
                     *.sql / *.pg file under supabase/tests/, each in its own session. The verdict is read from the \
                     TAP in rls_contract.log, not from psql's exit code. Logs and summary.json go to \
                     artifacts/ops/<date>/rehearsal_<stamp>/. Without a contract the run halts (exit 3).",
                )
                .arg(
                    Arg::new("target")
                        .long("target")
                        .value_name("TARGET")
                        .value_parser(["local", "staging", "url"])
                        .default_value("local")
                        .help("local: a throwaway cluster, every migration applied first (the default: the check before a PR); staging or url: the contract alone on that database, its DSN guarded"),
                )
                .arg(Arg::new("db-url").long("db-url").value_name("URL").help("The DSN for --target url (else $DATABASE_URL); used exactly as given"))
                .arg(superuser_arg())
                .arg(json.clone()),
        )
        .subcommand(Command::new("connectivity").about("Step 2 alone: the runbook's connectivity query; exit 0 when the server answers on IPv4").args(target_args()))
        .subcommand(Command::new("inventory").about("Step 3 alone: pending, applied, applied remotely but missing locally, and missing rollback pairs").args(target_args()))
        .subcommand(
            Command::new("apply")
                .about("Step 4 alone: apply the selected pending migrations; with --molecule, one replay attempt recorded in the plan")
                .args(target_args())
                .arg(Arg::new("no-atomic").long("no-atomic").action(ArgAction::SetTrue).help("Run each migration with the runbook's exact command (no transaction around the file)"))
                .arg(Arg::new("fail-fast").long("fail-fast").action(ArgAction::SetTrue).help("Stop at the first failed migration"))
                .arg(json.clone()),
        )
        .subcommand(
            Command::new("rollback")
                .about("Step 5 alone: roll back what the latest run on this target applied (--target staging|url only, never by default)")
                .args(target_args())
                .arg(json.clone()),
        )
        .subcommand(
            Command::new("scan")
                .about("Summarise the failures in any psql or Supabase CLI log, with what to do (the rehearsal's classifier)")
                .long_about(
                    "Summarise the failures in any psql or Supabase CLI log, with what to do.\n\n\
                     The rehearsal's own classifier: psql errors at every verbosity, connection failures (an IPv6 \
                     address is ipv6_unreachable), Supabase CLI failures and pgTAP diagnostics. NOTICE and WARNING \
                     lines are not failures, nor is 25P02 (\"current transaction is aborted\"). Files are streamed. \
                     Exit 0: no failures; 1: findings; 2: a file could not be read.",
                )
                .arg(Arg::new("files").value_name("FILE").required(true).num_args(1..).value_parser(value_parser!(PathBuf)))
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("Print {\"findings\": [...]} to stdout")),
        )
        .subcommand(
            Command::new("lint")
                .about("Static checks of the migrations, no database: rollback pairs, versions, non-transactional statements, IF [NOT] EXISTS guards, RLS in the same migration, SECURITY DEFINER search_path")
                .long_about(
                    "Static checks of the migrations and rollbacks, no database.\n\n\
                     Rules (default severity): missing_rollback (error), orphan_rollback (warning), duplicate_version (error), \
                     unversioned_file (error), non_transactional (warning), unguarded_create (warning), unguarded_drop \
                     (warning), rls_missing (error: a table created in an exposed schema without ENABLE ROW LEVEL SECURITY \
                     in the same migration), security_definer_search_path (error). Set a rule to error, warning or off in \
                     supabase/rehearsal.toml [lint]; exposed_schemas = [\"public\"] by default. Opt a statement out with \
                     `-- lint:allow RULE` on one of its lines or the line before. Exit 1 when an error-level rule fires.",
                )
                .arg(json.clone()),
        )
        .subcommand(Command::new("feedback").about("Start today's feedback header, or append the latest rehearsal's hand-off to it"))
        .subcommand(Command::new("bench").about(
            "Measure the speed targets: cluster up, rls, a 200-test suite, stage-rehearse against the runbook's bash through pgbouncer, scan",
        ))
        .subcommand(Command::new("doctor").about(
            "Check the prerequisites (psql, pg_dump, PostgreSQL server, pgTAP, Supabase CLI, contract, docs, vault) and print each fix",
        ))
}

fn main() -> ExitCode {
    signals::install();
    let matches = match cli().try_get_matches() {
        Ok(m) => m,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { Exit::CannotRun.code() } else { 0 });
        }
    };
    match run(&matches) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            let exit = exit::exit_of(&err);
            eprintln!("{}: {err:#}", if exit == Exit::Halted { "halted" } else { "error" });
            ExitCode::from(exit.code())
        }
    }
}

fn run(matches: &ArgMatches) -> anyhow::Result<Exit> {
    let workdir = match matches.get_one::<PathBuf>("workdir") {
        Some(dir) => dir.canonicalize().map_err(|e| exit::cannot_run(format!("--workdir {}: {e}", dir.display())))?,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf(),
    };
    let (name, sub) = matches.subcommand().expect("a subcommand is required");
    let ctx = cmd::Ctx { workdir, json: sub.try_get_one::<bool>("json").ok().flatten().copied().unwrap_or(false) };
    match name {
        "rls" => cmd::rls::run(&ctx, sub.get_flag("superuser-postgres"), &options(sub)),
        "stage-rehearse" => cmd::rehearse::run(&ctx, &options(sub)),
        "connectivity" => cmd::step::connectivity(&ctx, &options(sub)),
        "inventory" => cmd::step::inventory(&ctx, &options(sub)),
        "apply" => cmd::step::apply(&ctx, &options(sub)),
        "rollback" => cmd::step::rollback(&ctx, &options(sub)),
        "feedback" => cmd::step::feedback(&ctx),
        "lint" => cmd::lint::run(&ctx),
        "scan" => {
            cmd::scan::run(&sub.get_many::<PathBuf>("files").expect("required").cloned().collect::<Vec<_>>(), ctx.json)
        }
        "doctor" => cmd::doctor::run(&ctx),
        "bench" => cmd::bench::run(&ctx),
        other => unreachable!("clap accepted an unknown subcommand {other}"),
    }
}

fn options(sub: &ArgMatches) -> cmd::session::Options {
    let text = |name: &str| sub.try_get_one::<String>(name).ok().flatten().cloned();
    let flag = |name: &str| sub.try_get_one::<bool>(name).ok().flatten().copied().unwrap_or(false);
    let mut settings = Vec::new();
    if let Some(t) = text("lock-timeout") {
        settings.push(format!("lock_timeout = '{t}'"));
    }
    if let Some(t) = text("statement-timeout") {
        settings.push(format!("statement_timeout = '{t}'"));
    }
    cmd::session::Options {
        target: text("target"),
        db_url: text("db-url"),
        molecules: sub
            .try_get_many::<String>("molecule")
            .ok()
            .flatten()
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        plan: sub.try_get_one::<PathBuf>("plan").ok().flatten().cloned(),
        no_atomic: flag("no-atomic"),
        fail_fast: flag("fail-fast"),
        lock_timeout: text("lock-timeout"),
        superuser_postgres: flag("superuser-postgres"),
        settings,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_is_well_formed() {
        super::cli().debug_assert();
    }
}
