//! A log to findings, streamed: every line of a reader to the classifier, each cut at
//! [`MAX_LINE`], in constant memory whatever the log's size; and a finding as one line.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use crate::escape::one_line;
use crate::findings::{Finding, Place, Scanner, Severity};

/// The longest line the classifier reads; the rest of a longer line is skipped.
pub const MAX_LINE: usize = 64 * 1024;

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

/// `class SQLSTATE file:line: message`, on one line whatever the message holds.
pub fn finding_line(f: &Finding) -> String {
    let mut line = match f.severity {
        Severity::Warning => format!("warning {}", f.class.as_str()),
        Severity::Error => f.class.as_str().to_string(),
    };
    if let Some(code) = &f.sqlstate {
        line.push(' ');
        line.push_str(code);
    }
    if let Some(at) = f.location() {
        line.push(' ');
        line.push_str(&one_line(&at));
    }
    line.push_str(&format!(": {}", one_line(&f.message)));
    line
}

/// Why [`to_stdout`] stopped.
#[derive(Debug)]
pub enum Stop {
    /// A file could not be opened.
    Open(String, std::io::Error),
    /// A file could not be read.
    Read(String, std::io::Error),
    /// The findings could not be written (not a closed pipe: that ends the scan quietly).
    Write(std::io::Error),
}

/// Every file's findings on stdout as they are found (memory stays flat however many there are),
/// as text or as `{"findings": [...]}`, then the count; the number of findings. A reader that
/// stops early (`| head`) ends the scan quietly.
pub fn to_stdout(files: &[PathBuf], json: bool) -> Result<usize, Stop> {
    let mut out = Out { w: std::io::BufWriter::new(std::io::stdout().lock()), closed: false, failed: None };
    let (mut count, mut bytes) = (0usize, 0u64);
    if json {
        out.write("{\"findings\": [");
    }
    for path in files {
        let name = path.to_string_lossy().into_owned();
        let file = std::fs::File::open(path).map_err(|e| Stop::Open(name.clone(), e))?;
        bytes += scan_stream(BufReader::with_capacity(1 << 20, file), &name, &mut |f| {
            let text = if json {
                let sep = if count == 0 { "\n  " } else { ",\n  " };
                format!("{sep}{}", serde_json::to_string(&f).expect("a finding serialises"))
            } else {
                let text = format!("{}: {}\n    what to do: {}\n", name, finding_line(&f), f.hint);
                crate::escape::terminal(&text).into_owned()
            };
            out.write(&text);
            count += 1;
        })
        .map_err(|e| Stop::Read(name.clone(), e))?;
        if let Some(e) = out.failed.take() {
            return Err(Stop::Write(e));
        }
        if out.closed {
            break;
        }
    }
    let tail = if json {
        format!("{}]}}\n", if count == 0 { "" } else { "\n" })
    } else if count == 0 {
        format!("no failures found in {} file(s) ({bytes} bytes)\n", files.len())
    } else {
        format!("{count} finding(s) in {} file(s)\n", files.len())
    };
    out.write(&tail);
    if let Some(e) = out.failed.take() {
        return Err(Stop::Write(e));
    }
    match out.w.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Stop::Write(e)),
        _ => Ok(count),
    }
}

/// Stdout, written until its reader goes away.
struct Out<'a> {
    w: std::io::BufWriter<std::io::StdoutLock<'a>>,
    closed: bool,
    failed: Option<std::io::Error>,
}

impl Out<'_> {
    fn write(&mut self, text: &str) {
        if self.closed || self.failed.is_some() {
            return;
        }
        match self.w.write_all(text.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => self.closed = true,
            Err(e) => self.failed = Some(e),
            Ok(()) => {}
        }
    }
}
