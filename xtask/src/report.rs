//! Rendering `summary.json` for people: the one screen printed at the end of a run, SUMMARY.md
//! in the rehearsal dir, and the hand-off section appended to `feedback/data/<date>.md`.

use serde_json::Value;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The one screen: a migrations × apply / rollback / re-apply table, RLS counts, each failure
/// with where and what to do, blockers, next actions and the key logs.
pub fn screen(summary: &Value) -> String {
    let mut out = String::new();
    let dir = s(&summary["rehearsal_dir"]);
    let target = &summary["target"];
    out.push_str(&format!(
        "{} on {} ({}/{})\n",
        dir.rsplit('/').next().unwrap_or(dir),
        s(&target["kind"]),
        s(&target["host"]),
        s(&target["database"])
    ));
    let rows = summary["migrations"].as_array().cloned().unwrap_or_default();
    let has = |step: &str| rows.iter().any(|r| s(&r[step]["status"]) != "skipped");
    let (rollbacks, reapplies) = (has("rollback"), has("reapply"));
    if !rows.is_empty() {
        let width = rows.iter().map(|r| s(&r["version"]).len() + s(&r["name"]).len() + 1).max().unwrap_or(0).max(9);
        let mut header = format!("{:<width$}  {:<8}", "migration", "apply");
        if rollbacks {
            header.push_str(&format!("  {:<11}", "rollback"));
        }
        if reapplies {
            header.push_str("  re-apply");
        }
        out.push_str(&format!("\n{}\n", header.trim_end()));
        for r in &rows {
            let mut line =
                format!("{:<width$}  {:<8}", format!("{}_{}", s(&r["version"]), s(&r["name"])), status(&r["apply"]));
            if rollbacks {
                line.push_str(&format!("  {:<11}", status(&r["rollback"])));
            }
            if reapplies {
                line.push_str(&format!("  {}", status(&r["reapply"])));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    match summary["schema_restored"].as_bool() {
        Some(true) => out.push_str("schema after rollback: identical to before the apply\n"),
        Some(false) => out.push_str(&format!(
            "schema after rollback: DIFFERS from before the apply (see {dir}/schema_rollback.diff)\n"
        )),
        None => {}
    }
    let rls = &summary["rls"];
    if rls.is_object() {
        out.push_str(&format!(
            "rls: {} planned, {} ran, {} passed, {} failed, {} errors\n",
            rls["planned"], rls["ran"], rls["passed"], rls["failed"], rls["errors"]
        ));
        for f in rls["files"].as_array().into_iter().flatten() {
            let verdict = if f["ran_over"].as_bool() == Some(true) {
                format!("ran {} tests but planned {}: update the plan", f["ran"], f["planned"])
            } else if f["failed"].as_u64() == Some(0)
                && f["errors"].as_u64() == Some(0)
                && f["ran_short"].as_bool() != Some(true)
            {
                "ok".to_string()
            } else if f["ran_short"].as_bool() == Some(true) {
                format!("FAILED: ran short, {} of {} planned tests ran", f["ran"], f["planned"])
            } else {
                format!("FAILED {}/{}", f["failed"], f["ran"])
            };
            out.push_str(&format!("  {} .. {verdict}\n", s(&f["path"])));
        }
        for f in rls["failures"].as_array().into_iter().flatten() {
            out.push_str(&format!("    not ok {} - {} ({})\n", f["number"], s(&f["description"]), s(&f["file"])));
        }
    }
    let findings = summary["findings"].as_array().cloned().unwrap_or_default();
    if !findings.is_empty() {
        out.push_str("\nfindings:\n");
        for f in &findings {
            out.push_str(&format!("  {}\n    what to do: {}\n", finding_line(f), s(&f["hint"])));
        }
    }
    for (label, key) in [("warning", "warnings"), ("blocker", "blockers"), ("next", "next_actions")] {
        for item in summary[key].as_array().into_iter().flatten() {
            out.push_str(&format!("{label}: {}\n", s(item)));
        }
    }
    let logs: Vec<&str> = summary["logs"].as_array().into_iter().flatten().map(|l| s(&l["path"])).collect();
    let prefix = format!("{dir}/");
    if !logs.is_empty() && logs.iter().all(|l| l.starts_with(&prefix)) {
        let names: Vec<&str> = logs.iter().map(|l| &l[prefix.len()..]).collect();
        out.push_str(&format!("logs in {dir}/:\n  {}\n", names.join("  ")));
    } else if !logs.is_empty() {
        out.push_str(&format!("logs: {}\n", logs.join("  ")));
    }
    out.push_str(&format!("outcome: {} (exit {})\n", s(&summary["outcome"]), summary["exit_code"]));
    out
}

/// `class SQLSTATE file:line: message`.
pub fn finding_line(f: &Value) -> String {
    let mut line =
        if f["severity"] == "warning" { format!("warning {}", s(&f["class"])) } else { s(&f["class"]).to_string() };
    if let Some(code) = f["sqlstate"].as_str() {
        line.push(' ');
        line.push_str(code);
    }
    match (f["file"].as_str(), f["line"].as_u64()) {
        (Some(file), Some(n)) => line.push_str(&format!(" {file}:{n}")),
        (Some(file), None) => line.push_str(&format!(" {file}")),
        _ => {}
    }
    line.push_str(&format!(": {}", s(&f["message"])));
    line
}

fn status(step: &Value) -> String {
    let st = s(&step["status"]);
    match st {
        "failed" | "missing" => st.to_uppercase(),
        "" => "-".to_string(),
        _ => st.to_string(),
    }
}

/// SUMMARY.md: the screen, as Markdown, for the manager.
pub fn markdown(summary: &Value) -> String {
    let dir = s(&summary["rehearsal_dir"]);
    format!(
        "# Rehearsal summary: {}\n\n- Outcome: **{}** (exit {})\n- Target: {} ({}/{})\n- Started: {}\n- Finished: {}\n\n```\n{}```\n",
        dir.rsplit('/').next().unwrap_or(dir),
        s(&summary["outcome"]),
        summary["exit_code"],
        s(&summary["target"]["kind"]),
        s(&summary["target"]["host"]),
        s(&summary["target"]["database"]),
        s(&summary["started_at"]),
        s(&summary["finished_at"]),
        screen(summary)
    )
}

/// The hand-off section appended to the day's feedback file (runbook step 8).
pub fn handoff(summary: &Value) -> String {
    let dir = s(&summary["rehearsal_dir"]);
    let rows = summary["migrations"].as_array().cloned().unwrap_or_default();
    let count = |step: &str, st: &str| rows.iter().filter(|r| s(&r[step]["status"]) == st).count();
    let mut out = format!(
        "\n## Hand-off: {} ({}, {})\n\n",
        dir.rsplit('/').next().unwrap_or(dir),
        s(&summary["target"]["kind"]),
        s(&summary["finished_at"])
    );
    out.push_str(&format!("- Outcome: **{}** (exit {})\n", s(&summary["outcome"]), summary["exit_code"]));
    out.push_str(&format!(
        "- Apply: {} applied, {} failed. Rollback: {} rolled back, {} failed, {} missing. Re-apply: {} applied, {} failed.\n",
        count("apply", "applied"),
        count("apply", "failed"),
        count("rollback", "rolled_back"),
        count("rollback", "failed"),
        count("rollback", "missing"),
        count("reapply", "applied"),
        count("reapply", "failed"),
    ));
    if let Some(restored) = summary["schema_restored"].as_bool() {
        out.push_str(&format!(
            "- Schema after rollback: {}\n",
            if restored { "identical to before the apply" } else { "differs (see schema_rollback.diff)" }
        ));
    }
    let rls = &summary["rls"];
    if rls.is_object() {
        out.push_str(&format!(
            "- RLS contract: {} of {} planned passed, {} failed, {} errors\n",
            rls["passed"], rls["planned"], rls["failed"], rls["errors"]
        ));
    }
    let logs: Vec<String> = summary["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| format!("[{}]({})", s(&l["label"]), s(&l["path"])))
        .collect();
    out.push_str(&format!("- Logs: {}\n", logs.join(", ")));
    let findings = summary["findings"].as_array().cloned().unwrap_or_default();
    let blockers = summary["blockers"].as_array().cloned().unwrap_or_default();
    if findings.is_empty() && blockers.is_empty() {
        out.push_str("- Blockers: none\n");
    } else {
        out.push_str("- Blockers:\n");
        for b in &blockers {
            out.push_str(&format!("  - {}\n", s(b)));
        }
        for f in &findings {
            out.push_str(&format!("  - `{}`: {}\n", finding_line(f), s(&f["hint"])));
        }
    }
    let next = summary["next_actions"].as_array().cloned().unwrap_or_default();
    if next.is_empty() {
        out.push_str("- Next actions: none; ready for the manager's sign-off\n");
    } else {
        out.push_str("- Next actions:\n");
        for n in &next {
            out.push_str(&format!("  - {}\n", s(n)));
        }
    }
    out
}
