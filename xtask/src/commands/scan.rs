//! `cargo xtask scan FILE... [--json]`: the rehearsal's classifier on any psql or Supabase CLI log.
//! Files are streamed (constant memory whatever their size: a line is cut at 64 KiB, a message at
//! 500 characters); colour codes are read through. Exit 0 when there is no failure, 1 when there
//! are findings, 2 when a file cannot be read. A reader that stops early (`| head`) ends the scan
//! quietly. Nothing to clean up: the first Ctrl-C ends it.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::evidence::report;
use crate::exit::{self, Exit};
use crate::process::signals;
use crate::text::findings::{Finding, Place, Scanner};

/// The longest line the classifier reads; the rest of a longer line is skipped.
pub const MAX_LINE: usize = 64 * 1024;

pub fn run(files: &[PathBuf], json_out: bool) -> Result<Exit> {
    signals::exit_at_once();
    // Each finding is printed as it is found, so memory stays flat however many there are.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut count = 0usize;
    let mut bytes = 0u64;
    let mut closed = false;
    let write = |out: &mut std::io::BufWriter<std::io::StdoutLock>, text: &str, closed: &mut bool| -> Result<()> {
        if *closed {
            return Ok(());
        }
        match out.write_all(text.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                *closed = true;
                Ok(())
            }
            other => other.context("writing the findings"),
        }
    };
    if json_out {
        write(&mut out, "{\"findings\": [", &mut closed)?;
    }
    for path in files {
        let name = path.to_string_lossy().into_owned();
        let file = std::fs::File::open(path).map_err(|e| exit::cannot_run(format!("scan: {name}: {e}")))?;
        let mut failed = None;
        bytes += scan_stream(BufReader::with_capacity(1 << 20, file), &name, &mut |f| {
            let text = if json_out {
                let sep = if count == 0 { "\n  " } else { ",\n  " };
                format!("{sep}{}", serde_json::to_string(&f).expect("a finding serialises"))
            } else {
                let text = format!("{}: {}\n    what to do: {}\n", name, report::finding_line(&f), f.hint);
                crate::text::escape::terminal(&text).into_owned()
            };
            if let Err(e) = write(&mut out, &text, &mut closed) {
                failed.get_or_insert(e);
            }
            count += 1;
        })
        .with_context(|| format!("reading {name}"))?;
        if let Some(e) = failed {
            return Err(e);
        }
        if closed {
            break;
        }
    }
    let tail = if json_out {
        format!("{}]}}\n", if count == 0 { "" } else { "\n" })
    } else if count == 0 {
        format!("no failures found in {} file(s) ({bytes} bytes)\n", files.len())
    } else {
        format!("{count} finding(s) in {} file(s)\n", files.len())
    };
    write(&mut out, &tail, &mut closed)?;
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e).context("writing the findings"),
        _ => {}
    }
    Ok(if count == 0 { Exit::Passed } else { Exit::Failed })
}

/// Feed every line of `reader` to the classifier, each cut at [`MAX_LINE`]; returns the bytes read.
pub fn scan_stream(mut reader: impl BufRead, log: &str, found: &mut dyn FnMut(Finding)) -> std::io::Result<u64> {
    let mut scanner = Scanner::new(Some(log), Place::default());
    let mut line: Vec<u8> = Vec::with_capacity(4096);
    let mut total = 0u64;
    let mut overlong = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let mut at = 0;
        // Whole lines in the buffer are read where they are; only a line split across two reads
        // (or a giant one) is gathered in `line`.
        while let Some(i) = buf[at..].iter().position(|b| *b == b'\n') {
            let chunk = &buf[at..at + i];
            if line.is_empty() && !overlong {
                classify(&mut scanner, &chunk[..chunk.len().min(MAX_LINE)], found);
            } else {
                if !overlong {
                    let room = MAX_LINE.saturating_sub(line.len());
                    line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                classify(&mut scanner, &line, found);
                line.clear();
                overlong = false;
            }
            at += i + 1;
        }
        let rest = &buf[at..];
        if !overlong {
            let room = MAX_LINE.saturating_sub(line.len());
            line.extend_from_slice(&rest[..rest.len().min(room)]);
            overlong = rest.len() > room;
        }
        let n = buf.len();
        reader.consume(n);
        total += n as u64;
    }
    if !line.is_empty() {
        classify(&mut scanner, &line, found);
    }
    if let Some(f) = scanner.finish() {
        found(f);
    }
    Ok(total)
}

fn classify(scanner: &mut Scanner, line: &[u8], found: &mut dyn FnMut(Finding)) {
    let text = match std::str::from_utf8(line) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(line),
    };
    if let Some(f) = scanner.line(text.trim_end_matches(['\n', '\r'])) {
        found(f);
    }
}
