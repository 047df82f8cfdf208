//! The command-line conventions people expect: `--version`, "did you mean" for a mistyped command
//! or flag, each command's help with its own flags only and one example, shell completions that a
//! real bash completes with, colour on a terminal that NO_COLOR and a pipe turn off, and a line
//! with the elapsed time while a statement runs long.

mod common;

use std::process::Command;

use common::{prepare, Run, Sandbox};

fn xtask(args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(args).stdin(std::process::Stdio::null());
    Run::of(cmd)
}

#[test]
fn version_and_did_you_mean() {
    let run = xtask(&["--version"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), concat!("xtask ", env!("CARGO_PKG_VERSION"), "\n")));
    let run = xtask(&["stage-reherse"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("tip: a similar subcommand exists: 'stage-rehearse'"), "{run}");
    let run = xtask(&["rls", "--jsn"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("tip: a similar argument exists: '--json'"), "{run}");
}

#[test]
fn each_commands_help_has_its_own_flags_and_one_example() {
    let cli = xtask::cli::command();
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_name();
        let help = xtask(&[name, "--help"]);
        assert_eq!(help.code, Some(0), "{help}");
        let examples: Vec<&str> = help.stdout.lines().filter(|l| l.starts_with("Example: ")).collect();
        assert_eq!(examples.len(), 1, "`{name} --help` has one example: {}", help.stdout);
        assert!(
            examples[0].contains(&format!("cargo xtask {name}")) || examples[0].contains(&format!("xtask {name}")),
            "{}",
            examples[0]
        );
    }
    // Flags that do not apply are not offered.
    let lint = xtask(&["lint", "--help"]).stdout;
    assert!(
        !lint.contains("--target")
            && !lint.contains("--db-url")
            && !lint.contains("--junit")
            && lint.contains("--github"),
        "{lint}"
    );
    let scan = xtask(&["scan", "--help"]).stdout;
    assert!(!scan.contains("--target") && !scan.contains("--github"), "{scan}");
    let connectivity = xtask(&["connectivity", "--help"]).stdout;
    assert!(!connectivity.contains("--molecule") && !connectivity.contains("--junit"), "{connectivity}");
}

#[test]
fn bash_completes_commands_and_flags() {
    let script = xtask(&["completions", "bash"]).stdout;
    let bash = |words: &str, cword: usize| -> String {
        let probe = format!(
            "source /dev/stdin <<'COMPLETIONS'\n{script}\nCOMPLETIONS\nCOMP_WORDS=({words}); COMP_CWORD={cword}; \
             _xtask xtask \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[@]}}\""
        );
        let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(bash("xtask sta", 1), "stage-rehearse");
    assert_eq!(bash("xtask rls --jun", 2), "--junit");
    for shell in ["zsh", "fish"] {
        let out = xtask(&["completions", shell]);
        assert_eq!(out.code, Some(0));
        assert!(out.stdout.contains("stage-rehearse") && out.stdout.contains("rls"), "{shell}: {out}");
    }
    assert_eq!(xtask(&["completions", "powershell"]).code, Some(2));
}

/// Run under a pseudo-terminal (util-linux `script`), as a person at a terminal would.
fn on_a_terminal(sandbox: &Sandbox, args: &str, env: &[(&str, &str)]) -> String {
    let exe = env!("CARGO_BIN_EXE_xtask");
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &format!("{exe} --workdir {} {args}", sandbox.workdir.display()), "/dev/null"])
        .env("TMPDIR", &sandbox.tmp)
        .env("REHEARSAL_PG_CACHE", common::cache_dir())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
}

#[test]
fn colour_on_a_terminal_off_with_no_color_or_a_pipe() {
    prepare();
    let sandbox = Sandbox::new("colour");
    sandbox.write(
        "supabase/migrations/20250101000000_t.sql",
        "create table public.t (id int);\nalter table public.t enable row level security;\n",
    );
    sandbox.write("supabase/migrations/20250102000000_bad.sql", "create index t_x_idx on public.t (x);\n");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('ok');\n");
    let tty = on_a_terminal(&sandbox, "rls", &[]);
    assert!(tty.contains("\x1b[1;31mFAILED\x1b[0m"), "{tty:?}");
    assert!(tty.contains("\x1b[32mok\x1b[0m"), "{tty:?}");
    let plain = on_a_terminal(&sandbox, "rls", &[("NO_COLOR", "1")]);
    assert!(!plain.contains('\x1b') && plain.contains("FAILED"), "{plain:?}");
    let piped = sandbox.xtask(&["rls"]);
    assert!(!piped.stdout.contains('\x1b') && !piped.stderr.contains('\x1b'), "{piped}");
}

#[test]
fn a_long_statement_shows_its_file_line_and_elapsed_time() {
    prepare();
    let sandbox = Sandbox::new("in-flight");
    sandbox.write(
        "supabase/migrations/20250101000000_slow.sql",
        "create table public.s (id int);\nalter table public.s enable row level security;\nselect pg_sleep(4);\n",
    );
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('ok');\n");
    let run = sandbox.xtask(&["rls"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("  … still running: supabase/migrations/20250101000000_slow.sql:3 ("), "{run}");
}

/// A passing tree of 300 migrations still fits one screen: the clean rows collapse, every failure
/// would show.
#[test]
fn three_hundred_migrations_fit_one_screen() {
    prepare();
    let sandbox = Sandbox::new("one-screen");
    xtask::commands::bench::scale::write_tree(&sandbox.workdir).unwrap();
    let run = sandbox.xtask(&["stage-rehearse", "--target", "local", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(0), "{run}");
    let lines = run.stdout.lines().count();
    assert!(lines <= 40, "{lines} lines:\n{}", run.stdout);
    assert!(
        run.stdout.contains("(300 more migration(s), every step of each as it should be: see SUMMARY.md)"),
        "{}",
        run.stdout
    );
}
