//! Step 3's inventory: what is pending comes from the tool's own history query (in the round trip
//! that reads the first schema snapshot), and `supabase migration list` runs alongside, never
//! waited for by the apply. Its table is the runbook's evidence and is checked against the
//! tool's: a version they disagree on that the run did not touch is an `inventory_disagrees` error,
//! and so is a difference between the CLI's table after the run and the history the run left.

mod common;

use common::{prepare, Sandbox};

#[test]
fn the_clis_table_is_kept_as_evidence_below_the_history_the_run_found() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("inventory-evidence");
    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr
            .contains("step 3 inventory (the history query; `supabase migration list` checks it alongside): 9 pending"),
        "{run}"
    );
    assert!(run.stderr.contains("step 3 inventory: supabase CLI 3."), "{run}");
    let dir = sandbox.rehearsal_dir();
    let pre = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("migration_status_pre_"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("the pre inventory transcript");
    let (tool, cli) = pre.split_once("== `supabase migration list`, run alongside the rehearsal:").expect(&pre);
    assert!(tool.starts_with("== the history before the apply, read by the tool"), "{pre}");
    // Before the apply nothing was in the history: every version is local only.
    assert_eq!(tool.lines().filter(|l| l.contains("20251011090000 |                ")).count(), 1, "{pre}");
    assert!(cli.contains("`20251011090000`"), "the CLI's own table follows:\n{pre}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let source = summary["inventory"]["pre"]["source"].as_str().unwrap();
    assert!(
        source.starts_with("supabase CLI 3.") && source.ends_with("in agreement with the tool's query"),
        "{source}"
    );
    assert!(!summary["findings"].to_string().contains("inventory_disagrees"), "{summary}");
}

/// A CLI that reads another history than the tool cannot be produced with the real CLI on the
/// same DSN, so a stand-in runs the real, pinned CLI and adds a row it made up to its table (as a
/// CLI pointed at another database, or a history changed by someone else mid-run, would show).
#[test]
fn a_cli_table_that_disagrees_with_the_history_is_an_error() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("inventory-disagrees");
    let real = xtask::tools::supabase_cli::SupabaseCli::find_or_install(&common::repo_root()).unwrap();
    let stand_in = sandbox.root.join("supabase");
    std::fs::write(
        &stand_in,
        format!(
            "#!/bin/sh\n{real} \"$@\"\nrc=$?\nif [ \"$1\" = migration ] && [ \"$2\" = list ]; then\n  \
             echo '   ` `              | `20990101000000` | `2099-01-01 00:00:00` '\nfi\nexit $rc\n",
            real = real.path.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&stand_in, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut cmd = sandbox.command(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    cmd.env("REHEARSAL_SUPABASE_CLI", &stand_in);
    let run = common::Run::of(cmd);
    assert_eq!(run.code, Some(1), "{run}");
    let s = run.json();
    let mut found: Vec<&serde_json::Value> =
        s["findings"].as_array().unwrap().iter().filter(|f| f["class"] == "inventory_disagrees").collect();
    // Before the run (against the history the tool read) and after it (against the one it left).
    assert_eq!(found.len(), 2, "{run}");
    found.sort_by_key(|f| !f["file"].as_str().unwrap().contains("migration_status_pre_"));
    assert!(found.iter().all(|f| f["severity"] == "error"), "{run}");
    assert_eq!(
        found[0]["message"],
        "`supabase migration list` and supabase_migrations.schema_migrations disagree: the CLI lists 20990101000000 \
         as applied and the tool's query does not"
    );
    assert!(found[0]["file"].as_str().unwrap().contains("migration_status_pre_"), "{run}");
    assert_eq!(
        found[1]["message"],
        "`supabase migration list` after the run and the history the run left disagree: the CLI lists \
         20990101000000 as applied and the run did not leave it so"
    );
    assert!(found[1]["file"].as_str().unwrap().ends_with("migration_status_post.txt"), "{run}");
    assert!(run.stderr.contains("step 7 inventory after: `supabase migration list` DISAGREES"), "{run}");
    assert!(run.stderr.contains("step 3 inventory: `supabase migration list` DISAGREES with the history"), "{run}");
    // The rehearsal itself ran on what the tool read: all nine applied, rolled back and re-applied.
    let rows = s["migrations"].as_array().unwrap();
    assert_eq!(rows.len(), 9, "{run}");
    assert!(rows.iter().all(|r| r["reapply"]["status"] == "applied"), "{run}");
}
