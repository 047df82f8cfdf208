//! `cargo xtask rls`: the RLS contract alone. On `local` (the default, the check before a PR): a
//! fresh throwaway cluster, every migration applied in version order (step 4), the security
//! advisors, `supabase/seed.sql`, then the contract (step 6). On `staging` or `url`: the contract
//! alone on that database, its DSN guarded, nothing applied; the schema after it must be the one
//! before it, and the advisors read the database after it. Logs and summary.json go to a new
//! rehearsal dir.

use anyhow::Result;

use super::flow::{self, APPLY_LOG};
use super::Ctx;
use crate::database::Kind;
use crate::evidence::record::Outputs;
use crate::exit::{self, Exit};
use crate::prepare::{self, Flags, Needs};
use crate::progress;
use crate::runbook::advisors::Advisors;

pub fn run(ctx: &Ctx, flags: Flags) -> Result<Exit> {
    let needs = Needs { contract: true, plan: false, cli: false };
    let p = prepare::prepare_as(
        ctx.workdir.clone(),
        flags,
        needs,
        Some("local"),
        "; the contract alone, nothing is applied",
    )?;
    let advisors = Advisors::from_config(&p.config.advisors, &p.config.advisor_exclude, p.rules.exposed())?;
    let clock = std::time::Instant::now();
    let mut target = flow::open_target(&p)?;
    if let Some(cluster) = target.cluster() {
        let server = p.server.as_ref().expect("local has a server");
        progress!(
            "cluster: PostgreSQL {} on 127.0.0.1:{} up in {} ms",
            server.major,
            cluster.port(),
            clock.elapsed().as_millis()
        );
    }
    let mut record = flow::new_record(&p, &target);
    record.open_dir()?;
    record.summary_mut().warnings = p.warnings.clone();
    let done = (|| -> Result<()> {
        if p.kind == Kind::Local {
            let clock = record.step_start(4, "apply");
            let mut log = record.transcript(APPLY_LOG, "apply")?;
            let mut trailer = flow::advisors_trailer(&advisors);
            flow::apply_selected(
                &mut target,
                &p.tree.migrations,
                &[],
                (true, trailer.as_mut()),
                false,
                &mut log,
                &mut record,
            )?;
            record.step_end(clock);
            let applied: Vec<_> = p
                .tree
                .migrations
                .iter()
                .filter(|m| record.summary().migrations.iter().any(|r| r.version == m.version && r.applied()))
                .cloned()
                .collect();
            let advised = flow::advisors_after(&mut target, &advisors, trailer, &applied)?;
            progress!("advisors: {} finding(s)", advised.len());
            record.summary_mut().findings.extend(advised);
            flow::seed(&mut target, &mut log, &mut record)?;
        }
        record.summary_mut().provenance.server = target.server_version().map(str::to_string);
        let clock = record.step_start(6, "rls");
        super::contract::contract(&mut target, &p.contract, &mut record, "rls")?;
        record.step_end(clock);
        if p.kind != Kind::Local {
            // On the database as the contract left it (which must be as it found it).
            let advised = advisors.run(&mut target, &p.tree.migrations)?;
            progress!("advisors: {} finding(s)", advised.len());
            record.summary_mut().findings.extend(advised);
        }
        Ok(())
    })();
    let stop = match done {
        Ok(()) => None,
        Err(e) if exit::is_interrupt(&e) => return Err(e),
        Err(e) => {
            crate::out::err_line(&format!("error: {e:#}"));
            record.summary_mut().blockers.push(format!("the run stopped: {e:#}"));
            Some(Exit::CannotRun)
        }
    };
    drop(target);
    Ok(record.finish(stop, "completed", Outputs { handoff: false, command: "rls" }, &ctx.present))
}
