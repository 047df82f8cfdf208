//! `cargo xtask scan FILE... [--json]`: the rehearsal's classifier on any psql or Supabase CLI log.
//! Files are streamed (constant memory whatever their size: a line is cut at 64 KiB, a message at
//! 500 characters); colour codes are read through. Exit 0 when there is no failure, 1 when there
//! are findings, 2 when a file cannot be read. A reader that stops early (`| head`) ends the scan
//! quietly. Nothing to clean up: the first Ctrl-C ends it.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::exit::{self, Exit};
use crate::process::signals;
use xtask_scan::stream::Stop;

pub fn run(files: &[PathBuf], json_out: bool) -> Result<Exit> {
    signals::exit_at_once();
    match xtask_scan::stream::to_stdout(files, json_out) {
        Ok(0) => Ok(Exit::Passed),
        Ok(_) => Ok(Exit::Failed),
        Err(Stop::Open(name, e)) => Err(exit::cannot_run(format!("scan: {name}: {e}"))),
        Err(Stop::Read(name, e)) => Err(anyhow::Error::new(e).context(format!("reading {name}"))),
        Err(Stop::Write(e)) => Err(anyhow::Error::new(e)).context("writing the findings"),
    }
}
