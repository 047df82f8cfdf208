//! The record of a run: it owns the summary while the steps fill it, and at the end writes every
//! artifact (the plan and attempts, the feedback hand-off, summary.json, SUMMARY.md, the
//! manifest) and prints the one screen. A write that fails is named, the rest are still
//! attempted, and the run exits 2.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::artifacts::{date, rfc3339, write_atomic, RehearsalDir, Transcript};
use super::ci::{self, Present};
use super::markdown;
use super::next::next_actions;
use super::plan::{self, Change, Molecule};
use super::summary::{LogRef, MigrationRow, Outcome, Provenance, StepTiming, Summary, TargetRecord, SCHEMA_VERSION};
use super::{feedback, junit, manifest, page, report};
use crate::exit::Exit;

/// Which artifacts a command writes at the end.
#[derive(Clone, Copy, Debug)]
pub struct Outputs {
    /// The plan, the attempt lines, SUMMARY.md, the manifest and the feedback hand-off (the
    /// rehearsal and the step commands); `rls` writes summary.json alone.
    pub handoff: bool,
    /// The command that re-runs this check (`stage-rehearse`, `rls`), for the next actions.
    pub command: &'static str,
}

pub struct Record {
    summary: Summary,
    workdir: PathBuf,
    started: DateTime<Utc>,
    dir: Option<RehearsalDir>,
    /// Transcripts written to the day's folder, moved into the rehearsal dir at the end.
    day_logs: Vec<(String, String)>,
    plan: Option<PathBuf>,
    molecules: Vec<Molecule>,
    /// `(path relative to the workdir, sha256)` of every input rehearsed.
    inputs: Vec<(String, String)>,
    command: &'static str,
}

/// A step being timed.
pub struct StepClock {
    step: u8,
    name: &'static str,
    started: DateTime<Utc>,
    clock: Instant,
}

impl Record {
    pub fn new(workdir: &Path, started: DateTime<Utc>, target: TargetRecord, provenance: Provenance) -> Record {
        Record {
            summary: Summary {
                schema_version: SCHEMA_VERSION,
                command: String::new(),
                outcome: Outcome::Passed,
                exit_code: 0,
                target,
                identity: None,
                started_at: rfc3339(&started),
                finished_at: String::new(),
                rehearsal_dir: String::new(),
                migrations: Vec::new(),
                schema_restored: None,
                inventory: None,
                rls: None,
                findings: Vec::new(),
                blockers: Vec::new(),
                next_actions: Vec::new(),
                warnings: Vec::new(),
                logs: Vec::new(),
                provenance,
                steps: Vec::new(),
            },
            workdir: workdir.to_path_buf(),
            started,
            dir: None,
            day_logs: Vec::new(),
            plan: None,
            molecules: Vec::new(),
            inputs: Vec::new(),
            command: "stage-rehearse",
        }
    }

    /// The plan and this run's molecules, recorded at the end.
    pub fn with_plan(mut self, plan: Option<PathBuf>, molecules: Vec<Molecule>) -> Record {
        self.plan = plan;
        self.molecules = molecules;
        self
    }

    pub fn with_inputs(mut self, inputs: Vec<(String, String)>) -> Record {
        self.inputs = inputs;
        self
    }

    pub fn started(&self) -> &DateTime<Utc> {
        &self.started
    }

    pub fn date(&self) -> String {
        date(&self.started)
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn summary_mut(&mut self) -> &mut Summary {
        &mut self.summary
    }

    pub fn molecules(&self) -> &[Molecule] {
        &self.molecules
    }

    /// Create the rehearsal dir (once).
    pub fn open_dir(&mut self) -> Result<&RehearsalDir> {
        if self.dir.is_none() {
            let dir = RehearsalDir::create(&self.workdir, &self.started)?;
            self.summary.rehearsal_dir = dir.rel.clone();
            self.dir = Some(dir);
        }
        Ok(self.dir.as_ref().expect("created above"))
    }

    pub fn dir(&self) -> Option<&RehearsalDir> {
        self.dir.as_ref()
    }

    /// A transcript in the rehearsal dir, listed among the key logs under `label`.
    pub fn transcript(&mut self, name: &str, label: &str) -> Result<Transcript> {
        let t = self.open_dir()?.transcript(name)?;
        if !self.summary.logs.iter().any(|l| l.path == t.rel()) {
            self.summary.logs.push(LogRef { label: label.into(), path: t.rel().to_string() });
        }
        Ok(t)
    }

    /// A transcript in the day's folder (steps 2 and 3), moved into the rehearsal dir at the end.
    pub fn day_transcript(&mut self, stem: &str, ext: &str, label: &str) -> Result<Transcript> {
        let t = Transcript::new_in_day(&self.workdir, &self.started, stem, ext)?;
        self.day_logs.push((label.into(), t.rel().to_string()));
        Ok(t)
    }

    pub fn step_start(&self, step: u8, name: &'static str) -> StepClock {
        StepClock { step, name, started: Utc::now(), clock: Instant::now() }
    }

    pub fn step_end(&mut self, clock: StepClock) {
        self.summary.steps.push(StepTiming {
            step: clock.step,
            name: clock.name.to_string(),
            started_at: rfc3339(&clock.started),
            duration_ms: clock.clock.elapsed().as_millis() as u64,
        });
    }

    /// The summary's row of migration `version` (every selected migration has one).
    pub fn row_mut(&mut self, version: &str) -> &mut super::summary::MigrationRow {
        self.summary.migrations.iter_mut().find(|r| r.version == version).expect("a row per selected migration")
    }

    /// Write every artifact and print the screen (or the JSON). `stop` is how the run ended early,
    /// if it did; `success` is a molecule's status after a clean run (`completed`, or `in_progress`
    /// for an apply replay, which is not yet rolled back or verified).
    pub fn finish(mut self, stop: Option<Exit>, success: &'static str, outputs: Outputs, present: &Present) -> Exit {
        let json_out = present.json;
        let mut failed_writes: Vec<String> = Vec::new();
        // Step 7: the day's transcripts into the rehearsal dir.
        if let Some(dir) = &self.dir {
            for (i, (label, rel)) in std::mem::take(&mut self.day_logs).into_iter().enumerate() {
                let name = rel.rsplit('/').next().unwrap_or(&rel).to_string();
                match std::fs::rename(self.workdir.join(&rel), dir.file(&name)) {
                    Ok(()) => self.summary.logs.insert(i, LogRef { label, path: dir.rel_file(&name) }),
                    Err(e) => failed_writes.push(format!("moving {rel} into {}: {e}", dir.rel)),
                }
            }
            if dir.file("migration_status_post.txt").exists() {
                self.summary
                    .logs
                    .push(LogRef { label: "inventory after".into(), path: dir.rel_file("migration_status_post.txt") });
            }
            self.summary.logs.push(LogRef { label: "summary".into(), path: dir.rel_file("summary.json") });
        }
        self.summary.finished_at = rfc3339(&Utc::now());
        self.summary.command = outputs.command.to_string();
        // A hint that names a package for the server's major names it exactly.
        if let Some(major) = self.summary.target.postgres_major {
            for f in &mut self.summary.findings {
                f.hint = f.hint.replace("postgresql-<major>-", &format!("postgresql-{major}-"));
            }
        }
        self.summary.settle(stop);
        self.summary.next_actions = next_actions(&self.summary, outputs.command);
        self.command = outputs.command;

        if outputs.handoff {
            if let Err(e) = self.record_plan(success) {
                failed_writes.push(format!("{e:#}"));
            }
        }
        if !failed_writes.is_empty() {
            self.broken(&failed_writes);
        }
        if outputs.handoff && self.dir.is_some() {
            if let Err(e) = feedback::append(&self.workdir, &self.date(), &report::handoff(&self.summary)) {
                failed_writes.push(format!("{e:#}"));
                self.broken(&failed_writes);
            }
        }
        // The CI's annotations and step summary, before the files, so a failure to write them is
        // in the evidence too.
        if let Err(e) = ci::publish(present, &ci::annotations(&self.summary), &|room| {
            markdown::markdown_within(&self.summary, room)
        }) {
            failed_writes.push(format!("{e:#}"));
            self.broken(&failed_writes);
        }
        let json = serde_json::to_string_pretty(&self.summary).expect("the summary serialises");
        if let Some(dir) = &self.dir {
            let mut written = write_atomic(&dir.file("summary.json"), format!("{json}\n").as_bytes());
            if outputs.handoff && written.is_ok() {
                written = write_atomic(&dir.file("SUMMARY.md"), markdown::markdown(&self.summary).as_bytes());
            }
            if written.is_ok() {
                written = write_atomic(&dir.file("index.html"), page::render(&self.summary, &self.workdir).as_bytes());
            }
            if outputs.handoff && written.is_ok() {
                // The inputs as paths from inside the dir, so `sha256sum -c` checks them there too.
                let up = "../".repeat(dir.rel.split('/').count());
                let inputs: Vec<(String, String)> =
                    self.inputs.iter().map(|(rel, hash)| (format!("{up}{rel}"), hash.clone())).collect();
                written = manifest::write(&dir.path, &inputs);
            }
            if let Err(e) = written {
                failed_writes.push(format!("{e:#}"));
            }
            if outputs.handoff {
                crate::progress!(
                    "step 8 hand-off: {} and {}",
                    dir.rel_file("summary.json"),
                    feedback::path(&self.date())
                );
            }
        }
        if let Some(path) = &present.junit {
            if let Err(e) = junit::write(path, &self.summary) {
                failed_writes.push(format!("{e:#}"));
            }
        }
        if !failed_writes.is_empty() {
            self.broken(&failed_writes);
        }
        let printed = if json_out {
            let json = serde_json::to_string_pretty(&self.summary).expect("the summary serialises");
            crate::out::line(&json)
        } else {
            crate::out::screen(&report::screen(&self.summary))
        };
        drop(printed);
        for w in &failed_writes {
            eprintln!("error: {w}");
        }
        self.summary.exit()
    }

    /// An artifact could not be written: the run ends as an error (exit 2), the summary says which.
    fn broken(&mut self, failed_writes: &[String]) {
        for w in failed_writes {
            let blocker = format!("evidence incomplete: {w}");
            if !self.summary.blockers.contains(&blocker) {
                self.summary.blockers.push(blocker);
            }
        }
        if self.summary.exit_code != Exit::Interrupted.code() {
            self.summary.settle(Some(Exit::CannotRun));
        }
        self.summary.next_actions = next_actions(&self.summary, self.command);
    }

    /// Steps 7 and 8 for the plan: each molecule's status, attempt count and evidence, and its
    /// attempt line.
    fn record_plan(&self, success: &'static str) -> Result<()> {
        let Some(plan_path) = &self.plan else { return Ok(()) };
        if self.molecules.is_empty() {
            return Ok(());
        }
        let s = &self.summary;
        let evidence: Vec<String> = s.logs.iter().map(|l| l.path.clone()).collect();
        let halted = s.outcome == Outcome::Halted || s.outcome == Outcome::Error;
        let mut changes = Vec::new();
        for m in &self.molecules {
            let rows: Vec<&MigrationRow> =
                s.migrations.iter().filter(|r| r.molecule.as_deref() == Some(&m.id)).collect();
            let clean = s.outcome == Outcome::Passed
                || (!halted
                    && rows.iter().all(|r| !r.failed() && r.applied())
                    && s.rls.as_ref().is_some_and(|x| x.clean())
                    && s.schema_restored == Some(true));
            let status = if clean { success } else { "failed" };
            let line = json!({
                "molecule": m.id, "attempt": m.attempt, "files": m.migrations,
                "started_at": s.started_at, "finished_at": s.finished_at,
                "outcome": if halted { "halted" } else { status }, "evidence": evidence,
                "rehearsal_dir": s.rehearsal_dir,
            });
            let mut own = evidence.clone();
            own.push(plan::record_attempt(&self.workdir, &self.date(), m, &line)?);
            changes.push(Change { id: m.id.clone(), status, attempts: Some(m.attempt), evidence: own });
        }
        plan::update(plan_path, &changes)
    }
}
