//! Hangs and limits: Ctrl-C ends a scan that is still reading, giant lines and messages are cut, a
//! reader that stops early ends the output quietly, large files lint whole; and the data plan is
//! kept as its owner wrote it (symlink, mode, numbers) while runs on different molecules share it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::{prepare, Sandbox};
use serde_json::Value;

#[test]
fn ctrl_c_ends_a_scan_that_is_still_reading() {
    let sandbox = Sandbox::new("scan-fifo");
    let fifo = sandbox.root.join("endless.log");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path we own.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let child = sandbox
        .command(&["scan", fifo.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The writer stays open: the scan waits for more, as on a log that is still being written.
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writeln!(writer, "psql:a.sql:1: ERROR:  relation \"t\" does not exist").unwrap();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    drop(writer);
}

#[test]
fn a_giant_line_and_a_giant_message_are_cut() {
    let sandbox = Sandbox::new("giant-lines");
    let mut text = format!("psql:a.sql:1: ERROR:  relation \"{}\" does not exist\n", "x".repeat(8 << 20));
    text.push_str(&"y".repeat(8 << 20));
    text.push_str("\npsql:a.sql:3: ERROR:  syntax error at or near \"z\"\n");
    sandbox.write("giant.log", &text);
    let run = sandbox.xtask(&["scan", "--json", sandbox.path("giant.log").to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{}", &run.stderr);
    let findings = run.json()["findings"].as_array().unwrap().clone();
    assert_eq!(findings.len(), 2, "the line after the giant ones is still read");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(message.chars().count() <= 501 && message.ends_with('…'), "{}", message.len());
    assert_eq!(findings[1]["line"], 3);
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    let sandbox = Sandbox::new("closed-pipe");
    sandbox.write("many.log", &"psql:a.sql:1: ERROR:  relation \"t\" does not exist\n".repeat(50_000));
    let mut child = sandbox
        .command(&["scan", sandbox.path("many.log").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.contains("undefined_object"), "{first}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_large_migration_lints_whole() {
    let sandbox = Sandbox::new("large-lint");
    let statement = "create table if not exists public.t (id int);\nalter table public.t enable row level security;\n";
    sandbox.write("supabase/migrations/20250101000000_big.sql", &statement.repeat(60_000));
    sandbox.write("supabase/migrations.backup/20250101000000_big_rollback.sql", "drop table if exists public.t;\n");
    let run = sandbox.xtask(&["lint"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("lint: 0 error(s), 0 warning(s)"), "{run}");
}

fn molecule_plan(sandbox: &Sandbox) -> std::path::PathBuf {
    let plan = serde_json::json!({
        "big_number": 123456789012345678901234567890u128.to_string(),
        "molecules": [
            {"id": "inventory", "migrations": ["supabase/migrations/20251011090000_*.sql"], "status": "pending", "attempts": 0},
            {"id": "ab", "migrations": ["supabase/migrations/20251019024000_*.sql"], "status": "pending", "attempts": 0}
        ]
    });
    let real = sandbox.root.join("plans/real.json");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    // A number as a person wrote it, beyond what a float keeps.
    let text = serde_json::to_string_pretty(&plan)
        .unwrap()
        .replace("\"123456789012345678901234567890\"", "123456789012345678901234567890");
    std::fs::write(&real, text).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = sandbox.root.join("data_plan.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    link
}

#[test]
fn runs_on_two_molecules_at_once_share_the_plan_and_keep_it_as_written() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("shared-plan");
    let link = molecule_plan(&sandbox);
    let link_arg = link.to_str().unwrap();
    let children: Vec<_> = ["inventory", "ab"]
        .iter()
        .map(|m| sandbox.spawn(&["stage-rehearse", "--plan", link_arg, "--molecule", m]))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the plan is still a symlink");
    let real = sandbox.root.join("plans/real.json");
    assert_eq!(std::fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640, "its mode is kept");
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(text.contains("123456789012345678901234567890"), "numbers keep their digits:\n{text}");
    let p: Value = serde_json::from_str(&text).unwrap();
    for i in 0..2 {
        assert_eq!(
            (p["molecules"][i]["status"].as_str(), p["molecules"][i]["attempts"].as_u64()),
            (Some("completed"), Some(1)),
            "{p:#}"
        );
    }
}

#[test]
fn a_plan_that_is_not_what_the_tool_expects_is_refused_and_left_untouched() {
    let sandbox = Sandbox::with_repo_tree("odd-plans");
    let plan = sandbox.root.join("plan.json");
    for (text, why) in [
        ("[1, 2, 3]", "the data plan must be a JSON object"),
        ("{\"molecules\": {}}", "\"molecules\" must be an array"),
        (
            "{\"molecules\": [{\"id\": \"a\", \"migrations\": [\"supabase/migrations/*.sql\"], \"attempts\": \"3\"}]}",
            "molecules[0].attempts must be a whole number",
        ),
        (
            "{\"molecules\": [{\"id\": \"a\", \"migrations\": [\"supabase/migrations/*.sql\"], \"attempts\": 3.0}]}",
            "not 3.0",
        ),
        ("{\"molecules\": [{\"id\": \"a\",\n \"id\": \"b\"}]}", "the key \"id\" is given twice"),
    ] {
        std::fs::write(&plan, text).unwrap();
        let run = sandbox.xtask(&["stage-rehearse", "--plan", plan.to_str().unwrap()]);
        assert_eq!(run.code, Some(2), "{run}");
        assert!(run.stderr.contains(why), "{why}:\n{run}");
        assert_eq!(std::fs::read_to_string(&plan).unwrap(), text, "left untouched");
    }
}
