//! The project's PostgreSQL major (`supabase/config.toml`'s `[db] major_version`): the local
//! target rehearses on it when it is installed, and otherwise says, in the first lines, the
//! summary, the verdict and doctor, which major it rehearsed on and which the project runs.

mod common;

use common::{Run, Sandbox};

#[test]
fn a_project_on_another_major_is_told_which_major_it_was_rehearsed_on() {
    let installed = xtask::tools::server::ensure_server_with_pgtap().unwrap().major;
    let other = if installed == 17 { 16 } else { 17 };
    let sandbox = Sandbox::with_repo_tree("project-major");
    sandbox.write(
        "supabase/config.toml",
        &format!("project_id = \"occ\"\n\n[api]\nport = 54321\n\n[db]\nport = 54322\nmajor_version = {other}\n"),
    );
    // No apt-get here: the machine keeps the one major it has (a fake of nothing; the install path
    // is the same one the packages take).
    let run = |args: &[&str]| {
        let mut cmd = sandbox.command(args);
        cmd.env("REHEARSAL_NO_INSTALL", "1");
        Run::of(cmd)
    };
    let rehearsed = run(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(rehearsed.code, Some(0), "{rehearsed}");
    let warning = format!(
        "the project runs PostgreSQL {other} (supabase/config.toml [db] major_version) but the local target rehearsed \
         on PostgreSQL {installed}"
    );
    let first: String = rehearsed.stderr.lines().take(4).collect::<Vec<_>>().join("\n");
    assert!(first.contains(&format!("note: {warning}")), "in the first lines:\n{first}");
    let s = rehearsed.json();
    assert!(s["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().starts_with(&warning)), "{s}");
    assert_eq!(s["target"]["postgres_major"], installed);
    assert_eq!(s["target"]["project_major"], other);
    let dir = sandbox.rehearsal_dir();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["target"]["project_major"], other, "summary.json");
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let said =
        format!("Rehearsed on PostgreSQL {installed}; the project runs PostgreSQL {other} (supabase/config.toml).");
    assert!(page.contains(&said), "the verdict on the page says it");
    let screen = run(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
    assert!(screen.stdout.contains(&said), "the verdict on the screen says it:\n{screen}");

    let doctor = run(&["doctor"]);
    assert!(
        doctor.stdout.contains(&format!(
            "warn  postgres major   the project runs {other} (supabase/config.toml [db] major_version), the local target \
             rehearses on {installed}: install PostgreSQL {other}"
        )),
        "{doctor}"
    );

    // On its own major, nothing is said.
    sandbox.write("supabase/config.toml", &format!("[db]\nmajor_version = {installed}\n"));
    let same = run(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(same.code, Some(0), "{same}");
    assert!(!same.stderr.contains("the project runs PostgreSQL"), "{same}");
    assert_eq!(same.json()["target"]["project_major"], installed);
    assert!(run(&["doctor"])
        .stdout
        .contains(&format!("ok    postgres major   {installed}, as supabase/config.toml says")));
}
