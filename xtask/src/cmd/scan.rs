//! `cargo xtask scan FILE... [--json]`: the rehearsal's classifier on any psql or Supabase CLI log.
//! Files are streamed line by line (constant memory whatever their size). Exit 0 when there is no
//! failure, 1 when there are findings, 2 when a file cannot be read.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use crate::exit::{self, Exit};
use crate::findings::{Finding, Scanner};
use crate::report;

pub fn run(files: &[PathBuf], json_out: bool) -> Result<Exit> {
    let mut findings = Vec::new();
    let mut bytes = 0u64;
    for path in files {
        let name = path.to_string_lossy().into_owned();
        let file = std::fs::File::open(path).map_err(|e| exit::cannot_run(format!("scan: {name}: {e}")))?;
        bytes += scan_stream(BufReader::with_capacity(1 << 20, file), &name, &mut |f| findings.push(f))
            .with_context(|| format!("reading {name}"))?;
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"findings": findings.iter().map(Finding::to_json).collect::<Vec<_>>()})
            )?
        );
    } else if findings.is_empty() {
        println!("no failures found in {} file(s) ({bytes} bytes)", files.len());
    } else {
        for f in &findings {
            println!(
                "{}: {}\n    what to do: {}",
                f.log.as_deref().unwrap_or("-"),
                report::finding_line(&f.to_json()),
                f.hint
            );
        }
        println!("{} finding(s) in {} file(s)", findings.len(), files.len());
    }
    Ok(if findings.is_empty() { Exit::Passed } else { Exit::Failed })
}

/// Feed every line of `reader` to the classifier; returns the bytes read.
pub fn scan_stream(mut reader: impl BufRead, log: &str, found: &mut dyn FnMut(Finding)) -> std::io::Result<u64> {
    let mut scanner = Scanner::new(Some(log));
    let mut line = Vec::with_capacity(4096);
    let mut total = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        let text = String::from_utf8_lossy(&line);
        if let Some(f) = scanner.line(text.trim_end_matches(['\n', '\r'])) {
            found(f);
        }
    }
    if let Some(f) = scanner.finish() {
        found(f);
    }
    Ok(total)
}
