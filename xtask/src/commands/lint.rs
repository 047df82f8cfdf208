//! `cargo xtask lint [--json] [--github]`: the static checks of [`crate::text::lint`] over the whole tree.
//! Exit 1 when a rule at `error` severity fires, 0 otherwise (warnings are printed), 2 on a bad
//! config. Nothing to clean up: the first Ctrl-C ends it.

use anyhow::Result;

use super::Ctx;
use crate::evidence::{ci, report};
use crate::exit::Exit;
use crate::out;
use crate::prepare::tree::{sql_files, MIGRATIONS, ROLLBACKS};
use crate::process::signals;
use crate::text::config::Config;
use crate::text::escape;
use crate::text::findings::{Finding, Severity};
use crate::text::lint::{self, Rules, SqlFile};

pub fn run(ctx: &Ctx) -> Result<Exit> {
    signals::exit_at_once();
    let config = Config::load(&ctx.workdir)?;
    let rules = Rules::from_config(&config.lint)?;
    let migrations = sql_files(&ctx.workdir, MIGRATIONS)?.unwrap_or_default();
    let rollbacks: Vec<_> = sql_files(&ctx.workdir, ROLLBACKS)?
        .unwrap_or_default()
        .into_iter()
        .filter(|(rel, _)| rel.rsplit('/').next().is_some_and(|n| n.contains("rollback")))
        .collect();
    fn view(files: &[(String, Vec<u8>)]) -> Vec<SqlFile<'_>> {
        files.iter().map(|(rel, bytes)| SqlFile { rel, bytes }).collect()
    }
    let findings: Vec<Finding> = lint::tree(&view(&migrations), &view(&rollbacks), &rules);
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    if ctx.json {
        out::line(&serde_json::to_string_pretty(&serde_json::json!({ "findings": findings }))?)?;
    } else {
        let mut text = String::new();
        for f in &findings {
            text.push_str(&format!("{}\n    what to do: {}\n", report::finding_line(f), f.hint));
        }
        text.push_str(&format!("lint: {errors} error(s), {} warning(s)\n", findings.len() - errors));
        out::text(&text)?;
    }
    let annotations: Vec<String> = findings.iter().map(ci::annotation).collect();
    let summary = markdown(&findings, errors);
    ci::publish(&ctx.present, &annotations, &|room| crate::evidence::markdown::cut(&summary, room))?;
    Ok(if errors > 0 { Exit::Failed } else { Exit::Passed })
}

/// The lint's CI step summary.
fn markdown(findings: &[Finding], errors: usize) -> String {
    let mut md = format!("## cargo xtask lint: {errors} error(s), {} warning(s)\n\n", findings.len() - errors);
    for f in findings {
        let kind = if f.severity == Severity::Error { "error" } else { "warning" };
        md.push_str(&format!(
            "- {kind}: {}\n  - What to do: {}\n",
            escape::md_code(&report::finding_line(f), false),
            escape::md_prose(&f.hint)
        ));
    }
    md
}
