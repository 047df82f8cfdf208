//! `cargo xtask`: the data staging apply runbook as commands. Parse flags, pick the workdir,
//! dispatch; each command lives in `cmd/` and returns its exit code (SPEC §9).


use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};

use xtask::exit::{self, Exit};
use xtask::{cmd, signals};

fn cli() -> Command {
    let json = Arg::new("json").long("json").action(ArgAction::SetTrue).help("Print summary.json to stdout instead of the human summary");
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
            Command::new("rls")
                .about("Run the RLS contract on a throwaway local cluster (runbook step 6)")
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
                        .value_parser(["local"])
                        .default_value("local")
                        .help("Where to run: local (a throwaway cluster; the only target `rls` has yet)"),
                )
                .arg(json.clone()),
        )
        .subcommand(Command::new("bench").about(
            "Measure the speed targets: cluster up (<= 1.5 s) and `rls` end to end on this repo's tree (<= 3 s)",
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
        "rls" => cmd::rls::run(&ctx),
        "doctor" => cmd::doctor::run(&ctx),
        "bench" => cmd::bench::run(&ctx),
        other => unreachable!("clap accepted an unknown subcommand {other}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_is_well_formed() {
        super::cli().debug_assert();
    }
}
