//! `cargo xtask lint [--json]`: the static checks of [`crate::lint`] over the whole tree. Exit 1
//! when a rule at `error` severity fires, 0 otherwise (warnings are printed), 2 on a bad config.

use anyhow::Result;
use serde_json::json;

use super::Ctx;
use crate::config::Config;
use crate::exit::{self, Exit};
use crate::findings::Finding;
use crate::lint::{self, Rules};
use crate::report;

pub fn run(ctx: &Ctx) -> Result<Exit> {
    let config = Config::load(&ctx.workdir)?;
    let rules = Rules::from_config(&config.raw).map_err(exit::cannot_run)?;
    let findings = lint::tree(&ctx.workdir, &rules);
    let errors = findings.iter().filter(|f| f.severity == "error").count();
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"findings": findings.iter().map(Finding::to_json).collect::<Vec<_>>()})
            )?
        );
    } else {
        for f in &findings {
            println!("{}\n    what to do: {}", report::finding_line(&f.to_json()), f.hint);
        }
        println!("lint: {errors} error(s), {} warning(s)", findings.len() - errors);
    }
    Ok(if errors > 0 { Exit::Failed } else { Exit::Passed })
}
