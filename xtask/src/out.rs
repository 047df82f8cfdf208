//! Writing to stdout and stderr without panicking when the reader has gone (`cargo xtask scan
//! ... | head`): a closed pipe ends the output quietly, it is not an error of the run.

use std::io::Write;

/// Print `text` as is on stdout. `Err` only for a failure that is not a closed pipe.
pub fn text(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    quiet_on_closed_pipe(out.write_all(text.as_bytes()).and_then(|_| out.flush()))
}

/// Print `line` and a newline on stdout.
pub fn line(line: &str) -> std::io::Result<()> {
    text(&format!("{line}\n"))
}

/// A progress or error line on stderr; a closed stderr is ignored.
pub fn err_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes()).and_then(|_| err.write_all(b"\n"));
}

/// A write error that is a closed pipe becomes success: the reader does not want more.
pub fn quiet_on_closed_pipe(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
