//! `cargo xtask scan FILE... [--json]`: the rehearsal's classifier on any psql or Supabase CLI log.
//! Files are streamed line by line (constant memory whatever their size). Exit 0 when there is no
//! failure, 1 when there are findings, 2 when a file cannot be read.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::exit::{self, Exit};
use crate::findings::{Finding, Scanner};
use crate::report;

pub fn run(files: &[PathBuf], json_out: bool) -> Result<Exit> {
    // Each finding is printed as it is found, so memory stays flat however many there are.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut count = 0usize;
    let mut bytes = 0u64;
    if json_out {
        write!(out, "{{\"findings\": [")?;
    }
    for path in files {
        let name = path.to_string_lossy().into_owned();
        let file = std::fs::File::open(path).map_err(|e| exit::cannot_run(format!("scan: {name}: {e}")))?;
        let mut failed = None;
        bytes += scan_stream(BufReader::with_capacity(1 << 20, file), &name, &mut |f| {
            let written = if json_out {
                let sep = if count == 0 { "\n  " } else { ",\n  " };
                write!(out, "{sep}{}", f.to_json())
            } else {
                writeln!(out, "{}: {}\n    what to do: {}", name, report::finding_line(&f.to_json()), f.hint)
            };
            if let Err(e) = written {
                failed.get_or_insert(e);
            }
            count += 1;
        })
        .with_context(|| format!("reading {name}"))?;
        if let Some(e) = failed {
            return Err(e).context("writing the findings");
        }
    }
    if json_out {
        writeln!(out, "{}]}}", if count == 0 { "" } else { "\n" })?;
    } else if count == 0 {
        writeln!(out, "no failures found in {} file(s) ({bytes} bytes)", files.len())?;
    } else {
        writeln!(out, "{count} finding(s) in {} file(s)", files.len())?;
    }
    out.flush()?;
    Ok(if count == 0 { Exit::Passed } else { Exit::Failed })
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
