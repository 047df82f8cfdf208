//! The command line: every command, its flags (only those that apply to it), and their help.

use std::path::PathBuf;

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};

use crate::database::conn::{parse_timeout, Timeouts};
use crate::prepare::Flags;

fn target_arg(default_local: bool) -> Arg {
    let arg = Arg::new("target").long("target").value_name("TARGET").value_parser(["local", "staging", "url"]);
    if default_local {
        arg.help("local: a throwaway cluster, every migration applied first (the default: the check before a PR); staging or url: the contract alone on that database, its DSN guarded")
    } else {
        arg.help("local: a throwaway cluster; staging: the DSN from the vault files; url: --db-url or $DATABASE_URL [default: url when --db-url is given, else staging when the vault files exist, else local]")
    }
}

fn db_url_arg() -> Arg {
    Arg::new("db-url")
        .long("db-url")
        .value_name("URL")
        .help("The DSN for --target url (else $DATABASE_URL); used exactly as given (its password reaches psql through a private passfile or PGPASSWORD, never its argv); implies --target url")
}

fn timeout_args() -> [Arg; 2] {
    [
        Arg::new("lock-timeout")
            .long("lock-timeout")
            .value_name("DURATION")
            .value_parser(parse_timeout)
            .help("SET lock_timeout on the server in every session and file (migrations, rollbacks, advisors, contract), e.g. 5s"),
        Arg::new("statement-timeout")
            .long("statement-timeout")
            .value_name("DURATION")
            .value_parser(parse_timeout)
            .help("SET statement_timeout on the server in every session and file, e.g. 2min"),
    ]
}

fn plan_args() -> [Arg; 2] {
    [
        Arg::new("molecule")
            .long("molecule")
            .value_name("ID")
            .action(ArgAction::Append)
            .help("Rehearse this molecule of the data plan (repeatable) [default: the plan's active molecules, else every pending migration]"),
        Arg::new("plan")
            .long("plan")
            .value_name("PATH")
            .value_parser(value_parser!(PathBuf))
            .help("The data plan [default: $DATA_PLAN, else /tmp/data_plan.json]"),
    ]
}

fn apply_args() -> [Arg; 2] {
    [
        Arg::new("no-atomic")
            .long("no-atomic")
            .action(ArgAction::SetTrue)
            .help("Run each migration with the runbook's exact command (no transaction around the file)"),
        Arg::new("fail-fast")
            .long("fail-fast")
            .action(ArgAction::SetTrue)
            .help("Stop applying at the first failed migration (the runbook's loop goes on)"),
    ]
}

fn superuser_arg() -> Arg {
    Arg::new("superuser-postgres")
        .long("superuser-postgres")
        .action(ArgAction::SetTrue)
        .help("On local: make postgres a superuser, as older Supabase images did (default: not, as on Supabase today)")
}

fn json_arg() -> Arg {
    Arg::new("json")
        .long("json")
        .action(ArgAction::SetTrue)
        .help("Print summary.json to stdout instead of the human summary")
}

fn ci_args(junit: bool) -> Vec<Arg> {
    let mut args = vec![Arg::new("github").long("github").action(ArgAction::SetTrue).help(
        "GitHub Actions output: each finding as a workflow annotation, the summary appended to $GITHUB_STEP_SUMMARY \
         [default: on when GITHUB_ACTIONS=true]",
    )];
    if junit {
        args.push(
            Arg::new("junit")
                .long("junit")
                .value_name("PATH")
                .value_parser(value_parser!(PathBuf))
                .help("Also write a JUnit XML report: a test case per migration step and per pgTAP test"),
        );
    }
    args
}

pub fn command() -> Command {
    Command::new("xtask")
        .bin_name("cargo xtask")
        .version(env!("CARGO_PKG_VERSION"))
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
                .help("Repo root to work in: supabase/, artifacts/, docs/ are resolved under it [default: the nearest directory from here up that holds supabase/migrations/, else this workspace]"),
        )
        .subcommand(stage_rehearse_command())
        .subcommand(rls_command())
        .subcommand(adopt_command())
        .subcommand(connectivity_command())
        .subcommand(inventory_command())
        .subcommand(drift_command())
        .subcommand(apply_command())
        .subcommand(rollback_command())
        .subcommand(scan_command())
        .subcommand(lint_command())
        .subcommand(feedback_command())
        .subcommand(bench_command())
        .subcommand(completions_command())
        .subcommand(doctor_command())
}

/// `cargo xtask stage-rehearse`.
fn stage_rehearse_command() -> Command {
    Command::new("stage-rehearse")
        .about("The whole rehearsal, runbook steps 0-8, into one rehearsal dir")
        .long_about(
            "The whole rehearsal, runbook steps 0-8, into one rehearsal dir.\n\n\
             0 feedback header; 1 target, guards and the rehearsal lock; 2 connectivity (IPv4); 3 inventory with \
             the Supabase CLI (else SQL) and lint; 4 schema snapshot, then each selected migration in one transaction \
             with its history row, then the security advisors; 5 each rollback of what applied, newest first, the \
             schema compared with the snapshot, then re-apply; 6 the RLS contract; 7 inventory again, plan and \
             attempts; 8 summary.json, SUMMARY.md, MANIFEST.sha256 and the hand-off in feedback/data/<date>.md.",
        )
        .after_help("Example: cargo xtask stage-rehearse --target staging --molecule seo --lock-timeout 5s")
        .arg(target_arg(false))
        .arg(db_url_arg())
        .args(plan_args())
        .args(timeout_args())
        .args(apply_args())
        .arg(superuser_arg())
        .arg(json_arg())
        .args(ci_args(true))
}

/// `cargo xtask rls`.
fn rls_command() -> Command {
    Command::new("rls")
        .about("Run the RLS contract: on a throwaway local cluster after every migration (default), or alone on staging/url (runbook step 6)")
        .long_about(
            "Run the RLS contract on a throwaway local cluster (runbook step 6).\n\n\
             Starts a PostgreSQL cluster that looks like a Supabase database (no Docker), applies every \
             migration in supabase/migrations/ in version order (each file in one transaction with its \
             history row), runs the security advisors, applies supabase/seed.sql if present, then runs \
             supabase/rls_tests.sql and every *.sql / *.pg file under supabase/tests/. The verdict is read from \
             the TAP in rls_contract.log, not from psql's exit code. Logs and summary.json go to \
             artifacts/ops/<date>/rehearsal_<stamp>/. Without a contract the run halts (exit 3).",
        )
        .after_help("Example: cargo xtask rls --junit target/rls-junit.xml")
        .arg(target_arg(true))
        .arg(db_url_arg())
        .args(timeout_args())
        .arg(superuser_arg())
        .arg(json_arg())
        .args(ci_args(true))
}

/// `cargo xtask adopt`.
fn adopt_command() -> Command {
    Command::new("adopt")
        .about("Bring the tool into an existing Supabase repository: the xtask crate, the `cargo xtask` alias, the workspace, the Supabase CLI pin, the CI workflows (rehearsal-*.yml), a commented supabase/rehearsal.toml and .gitignore lines; what is there is merged, never replaced, and a second adopt changes nothing")
        .after_help("Example: cargo xtask adopt ../my-supabase-app")
        .arg(
            Arg::new("dir")
                .value_name("DIR")
                .required(true)
                .value_parser(value_parser!(PathBuf))
                .help("The repository's root (where supabase/ is)"),
        )
        .arg(
            Arg::new("force")
                .long("force")
                .action(ArgAction::SetTrue)
                .help("Replace the files an earlier adopt wrote even where they were edited since (else exit 2, naming each)"),
        )
}

/// `cargo xtask connectivity`.
fn connectivity_command() -> Command {
    Command::new("connectivity")
        .about("Step 2 alone: the runbook's connectivity query; exit 0 when the server answers on IPv4")
        .after_help("Example: cargo xtask connectivity --target staging")
        .arg(target_arg(false))
        .arg(db_url_arg())
}

/// `cargo xtask inventory`.
fn inventory_command() -> Command {
    Command::new("inventory")
        .about("Step 3 alone: pending, applied, applied remotely but missing locally, and missing rollback pairs")
        .after_help("Example: cargo xtask inventory --target staging")
        .arg(target_arg(false))
        .arg(db_url_arg())
}

/// `cargo xtask drift`.
fn drift_command() -> Command {
    Command::new("drift")
        .about("Is the target what its migration history says? Read-only: replays the applied migrations on a throwaway cluster and compares both catalogs object by object; names files edited after they applied and versions missing here; with supabase/schemas/, the declarative schema against the migrations (on local, that alone); --write-migration writes the migration a hand fix needs (exit 1 when there is any)")
        .after_help("Example: cargo xtask drift --target staging --write-migration record_hand_fixes")
        .arg(target_arg(false))
        .arg(db_url_arg())
        .arg(
            Arg::new("write-migration")
                .long("write-migration")
                .value_name("NAME")
                .help("Also write supabase/migrations/<version>_NAME.sql, which records what the target has that its history did not make (from the server's own definitions), and its rollback in supabase/migrations.backup/; kinds it cannot write are listed, never guessed. Still read-only on the target"),
        )
        .arg(json_arg())
}

/// `cargo xtask apply`.
fn apply_command() -> Command {
    Command::new("apply")
        .about("Step 4 alone: apply the selected pending migrations; with --molecule, one replay attempt recorded in the plan")
        .after_help("Example: cargo xtask apply --target staging --molecule seo")
        .arg(target_arg(false))
        .arg(db_url_arg())
        .args(plan_args())
        .args(timeout_args())
        .args(apply_args())
        .arg(json_arg())
        .args(ci_args(true))
}

/// `cargo xtask rollback`.
fn rollback_command() -> Command {
    Command::new("rollback")
        .about("Step 5 alone: roll back what the latest run applied, on the very database it applied to (--target staging|url only, never by default)")
        .after_help("Example: cargo xtask rollback --target staging")
        .arg(target_arg(false))
        .arg(db_url_arg())
        .arg(
            Arg::new("plan")
                .long("plan")
                .value_name("PATH")
                .value_parser(value_parser!(PathBuf))
                .help("The data plan; a rollback leaves it as it is (undoing a run is not an attempt)"),
        )
        .args(timeout_args())
        .arg(json_arg())
        .args(ci_args(true))
}

/// `cargo xtask scan`.
fn scan_command() -> Command {
    Command::new("scan")
        .about("Summarise the failures in any psql or Supabase CLI log, with what to do (the rehearsal's classifier)")
        .long_about(
            "Summarise the failures in any psql or Supabase CLI log, with what to do.\n\n\
             The rehearsal's own classifier: psql errors at every verbosity, connection failures (an IPv6 \
             address is ipv6_unreachable), Supabase CLI failures and pgTAP diagnostics. NOTICE and WARNING \
             lines are not failures, nor is 25P02 (\"current transaction is aborted\"). Files are streamed; \
             colour codes are read through. Exit 0: no failures; 1: findings; 2: a file could not be read.",
        )
        .after_help("Example: cargo xtask scan artifacts/ops/*/rehearsal_*/migration_apply.log")
        .arg(Arg::new("files").value_name("FILE").required(true).num_args(1..).value_parser(value_parser!(PathBuf)))
        .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("Print {\"findings\": [...]} to stdout"))
}

/// `cargo xtask lint`.
fn lint_command() -> Command {
    Command::new("lint")
        .about("Static checks of the migrations, no database: rollback pairs, versions, non-transactional statements, IF [NOT] EXISTS guards, RLS in the same migration, SECURITY DEFINER search_path, psql meta-commands, encoding, what a statement locks on an existing table")
        .long_about(
            "Static checks of the migrations and rollbacks, no database.\n\n\
             Rules (default severity): missing_rollback (error), orphan_rollback (warning), duplicate_version (error), \
             unversioned_file (error), non_transactional (warning), unguarded_create (warning), unguarded_drop \
             (warning), rls_missing (error: a table created in an exposed schema without ENABLE ROW LEVEL SECURITY \
             in the same migration), security_definer_search_path (error), psql_meta_command (error), not_utf8 \
             (error); and what a statement locks on a table that existed before the file (PostgreSQL 15's lock in \
             the message, the safe form in the hint), each a warning: index_not_concurrent, drop_index_not_concurrent, \
             column_type_rewrite, volatile_default, set_not_null_scan, constraint_not_valid, unique_without_index, \
             refresh_not_concurrent, table_rewrite_command, breaking_change, lock_timeout_missing. Set a rule to \
             error, warning or off in supabase/rehearsal.toml [lint] (psql_meta_command and not_utf8 stay \
             errors); exposed_schemas = [\"public\"] by default. Opt a statement out with `-- lint:allow RULE` on \
             one of its lines or the line before. Exit 1 when an error-level rule fires.",
        )
        .after_help("Example: cargo xtask lint --json")
        .arg(json_arg().help("Print {\"findings\": [...]} to stdout"))
        .args(ci_args(false))
}

/// `cargo xtask feedback`.
fn feedback_command() -> Command {
    Command::new("feedback")
        .about("Start today's feedback header, or append the latest rehearsal's hand-off to it")
        .after_help("Example: cargo xtask feedback")
}

/// `cargo xtask bench`.
fn bench_command() -> Command {
    Command::new("bench")
        .about("Measure the speed targets: the cold build, scan (sparse and mixed logs), cluster up and rls, a 200-test suite, stage-rehearse against the runbook's bash through pgbouncer at 0 ms and over a delayed link, apply against `supabase db push`, 300 migrations")
        .after_help("Example: cargo xtask bench --case wan --rtt-ms 30")
        .arg(
            Arg::new("case")
                .long("case")
                .value_name("CASE")
                .action(ArgAction::Append)
                .value_parser(crate::commands::bench::CASES)
                .help("Measure only this case (repeatable; default: all)"),
        )
        .arg(
            Arg::new("rtt-ms")
                .long("rtt-ms")
                .value_name("MS")
                .default_value("30")
                .value_parser(value_parser!(u64).range(0..=1000))
                .help("Round trip the delay proxy adds for the wan, push and scale cases, in milliseconds"),
        )
}

/// `cargo xtask completions`.
fn completions_command() -> Command {
    Command::new("completions")
        .about("Print shell completions for `xtask` (use with `alias xtask='cargo xtask'`)")
        .after_help("Example: source <(cargo xtask completions bash) && alias xtask='cargo xtask'")
        .arg(
            Arg::new("shell")
                .value_name("SHELL")
                .required(true)
                .value_parser(["bash", "zsh", "fish"])
                .help("The shell to complete in"),
        )
}

/// `cargo xtask doctor`.
fn doctor_command() -> Command {
    Command::new("doctor")
        .about("Check the prerequisites (psql, PostgreSQL server, pgTAP, Supabase CLI, contract, docs, vault) and print each fix")
        .after_help("Example: cargo xtask doctor")
}

/// The flags of a run command.
pub fn flags(sub: &ArgMatches) -> Flags {
    let text = |name: &str| sub.try_get_one::<String>(name).ok().flatten().cloned();
    let flag = |name: &str| sub.try_get_one::<bool>(name).ok().flatten().copied().unwrap_or(false);
    Flags {
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
        superuser_postgres: flag("superuser-postgres"),
        timeouts: Timeouts { lock: text("lock-timeout"), statement: text("statement-timeout") },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_is_well_formed() {
        super::command().debug_assert();
    }
}
