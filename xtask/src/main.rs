//! `cargo xtask`: the data staging apply runbook as commands. Parse the flags, pick the workdir,
//! dispatch; each command lives in `commands/` and returns its exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ArgMatches;

use xtask::commands::{self, Ctx};
use xtask::exit::{self, Exit};
use xtask::process::signals;
use xtask::{cli, out};

fn main() -> ExitCode {
    signals::install();
    let matches = match cli::command().try_get_matches() {
        Ok(m) => m,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { Exit::CannotRun.code() } else { 0 });
        }
    };
    let json = matches
        .subcommand()
        .and_then(|(_, sub)| sub.try_get_one::<bool>("json").ok().flatten().copied())
        .unwrap_or(false);
    match run(&matches, json) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            let exit = exit::exit_of(&err);
            let label = if exit == Exit::Halted { "halted" } else { "error" };
            out::err_line(&format!("{label}: {err:#}"));
            if json {
                // --json promises JSON on stdout whatever happens.
                let outcome = if exit == Exit::Halted || exit == Exit::Interrupted { "halted" } else { "error" };
                let doc = serde_json::json!({
                    "schema_version": 1, "outcome": outcome, "exit_code": exit.code(),
                    "error": format!("{err:#}"), "blockers": [format!("{err:#}")],
                });
                let _ = out::line(&doc.to_string());
            }
            ExitCode::from(exit.code())
        }
    }
}

fn run(matches: &ArgMatches, json: bool) -> anyhow::Result<Exit> {
    let workdir = match matches.get_one::<PathBuf>("workdir") {
        Some(dir) => dir.canonicalize().map_err(|e| exit::cannot_run(format!("--workdir {}: {e}", dir.display())))?,
        // The tree the user stands in (this directory or the nearest one above it that holds
        // supabase/migrations/), else this tool's own workspace.
        None => std::env::current_dir()
            .ok()
            .and_then(|here| here.ancestors().find(|d| d.join("supabase/migrations").is_dir()).map(Path::to_path_buf))
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
            }),
    };
    let (name, sub) = matches.subcommand().expect("a subcommand is required");
    let present = xtask::evidence::ci::Present::new(
        json,
        sub.try_get_one::<PathBuf>("junit").ok().flatten().cloned(),
        sub.try_get_one::<bool>("github").ok().flatten().copied().unwrap_or(false),
    );
    let ctx = Ctx { workdir, json, present };
    match name {
        "stage-rehearse" => commands::rehearse::run(&ctx, cli::flags(sub)),
        "rls" => commands::rls::run(&ctx, cli::flags(sub)),
        "connectivity" => commands::steps::connectivity(&ctx, cli::flags(sub)),
        "inventory" => commands::steps::inventory(&ctx, cli::flags(sub)),
        "drift" => commands::drift::run(&ctx, cli::flags(sub), sub.get_one::<String>("write-migration").cloned()),
        "apply" => commands::apply::run(&ctx, cli::flags(sub)),
        "rollback" => commands::rollback::run(&ctx, cli::flags(sub)),
        "feedback" => commands::steps::feedback(&ctx),
        "adopt" => commands::adopt::run(
            sub.get_one::<PathBuf>("dir").expect("required"),
            sub.get_one::<bool>("force").copied().unwrap_or(false),
        ),
        "lint" => commands::lint::run(&ctx),
        "scan" => {
            commands::scan::run(&sub.get_many::<PathBuf>("files").expect("required").cloned().collect::<Vec<_>>(), json)
        }
        "doctor" => commands::doctor::run(&ctx),
        "completions" => {
            let shell = match sub.get_one::<String>("shell").map(String::as_str) {
                Some("zsh") => clap_complete::Shell::Zsh,
                Some("fish") => clap_complete::Shell::Fish,
                _ => clap_complete::Shell::Bash,
            };
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cli::command(), "xtask", &mut buf);
            out::text(&String::from_utf8_lossy(&buf))?;
            Ok(Exit::Passed)
        }
        "bench" => commands::bench::run(
            &ctx,
            &commands::bench::Options {
                cases: sub.get_many::<String>("case").into_iter().flatten().cloned().collect(),
                rtt: std::time::Duration::from_millis(*sub.get_one::<u64>("rtt-ms").expect("has a default")),
            },
        ),
        other => unreachable!("clap accepted an unknown subcommand {other}"),
    }
}
