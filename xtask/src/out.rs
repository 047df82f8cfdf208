//! Writing to stdout and stderr without panicking when the reader has gone (`cargo xtask scan
//! ... | head`): a closed pipe ends the output quietly, it is not an error of the run. On a
//! terminal the words that matter are coloured (FAILED red, ok green); `NO_COLOR` or a pipe turns
//! that off, `CLICOLOR_FORCE=1` turns it on. And [`InFlight`]: a line with the elapsed time while a
//! statement runs long, so a lock wait does not look like a hang.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::text::escape;

/// Whether to colour a stream that is (or is not) a terminal.
fn colour(tty: bool) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
    !set("NO_COLOR") && (tty || set("CLICOLOR_FORCE"))
}

/// `text` with its verdict words coloured, when `on`.
pub fn paint(text: &str, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    static WORDS: OnceLock<regex::Regex> = OnceLock::new();
    let words = WORDS.get_or_init(|| {
        regex::Regex::new(
            r"(?-u:\b)(FAILED|MISSING|INTERRUPTED|DIFFERS|outcome: (?:failed|halted|error)|ok|applied|rolled_back|outcome: passed)(?-u:\b)",
        )
            .expect("a valid pattern")
    });
    words
        .replace_all(text, |c: &regex::Captures| {
            let word = &c[0];
            let red = word.chars().next().is_some_and(char::is_uppercase)
                || word.starts_with("outcome: f")
                || word.starts_with("outcome: h")
                || word.starts_with("outcome: e");
            format!("\x1b[{}m{word}\x1b[0m", if red { "1;31" } else { "32" })
        })
        .into_owned()
}

fn raw(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    quiet_on_closed_pipe(out.write_all(text.as_bytes()).and_then(|_| out.flush()))
}

/// Print `text` on stdout, its control characters but line feeds and tabs escaped (text from a
/// tree or a server never reaches a terminal as an escape sequence). `Err` only for a failure
/// that is not a closed pipe.
pub fn text(text: &str) -> std::io::Result<()> {
    raw(&escape::terminal(text))
}

/// Print the summary screen on stdout, escaped as [`text`] does, coloured on a terminal.
pub fn screen(screen: &str) -> std::io::Result<()> {
    raw(&paint(&escape::terminal(screen), colour(std::io::stdout().is_terminal())))
}

/// Print `line` and a newline on stdout.
pub fn line(line: &str) -> std::io::Result<()> {
    text(&format!("{line}\n"))
}

/// A progress or error line on stderr, escaped as [`text`] does, coloured on a terminal; a closed stderr is ignored.
pub fn err_line(line: &str) {
    let line = paint(&escape::terminal(line), colour(std::io::stderr().is_terminal()));
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes()).and_then(|_| err.write_all(b"\n"));
}

/// What the working session is doing, for [`InFlight`]: `supabase/migrations/x.sql:12`.
pub type Activity = Arc<Mutex<String>>;

/// While it lives, a line on stderr once a statement has run for 2 s: on a terminal one line,
/// updated each second and cleared at the end; elsewhere (a CI log) a line at 2 s, 10 s, 30 s and
/// then each minute.
pub struct InFlight {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InFlight {
    pub fn start(activity: Activity) -> InFlight {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let tty = std::io::stderr().is_terminal();
            let mut printed = false;
            let mut next = Duration::from_secs(2);
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(next.saturating_sub(started.elapsed()))
            {
                let what = activity.lock().map(|a| a.clone()).unwrap_or_default();
                let what = if what.is_empty() { "the working session".to_string() } else { what };
                let secs = started.elapsed().as_secs();
                let line = format!("  … still running: {what} ({secs} s)");
                if tty {
                    eprint!("\r\x1b[K{line}");
                } else {
                    err_line(&line);
                }
                printed = true;
                next = match (tty, secs) {
                    (true, s) => Duration::from_secs(s + 1),
                    (false, s) if s < 10 => Duration::from_secs(10),
                    (false, s) if s < 30 => Duration::from_secs(30),
                    (false, s) => Duration::from_secs((s / 60 + 1) * 60),
                };
            }
            if printed && tty {
                eprint!("\r\x1b[K");
            }
        });
        InFlight { stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A write error that is a closed pipe becomes success: the reader does not want more.
pub fn quiet_on_closed_pipe(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn verdict_words_are_coloured_only_when_asked() {
        let line = "step 4 apply 1_a .. ok (3 ms)\n1_b  FAILED  skipped\noutcome: failed (exit 1)\nbook";
        assert_eq!(super::paint(line, false), line);
        let painted = super::paint(line, true);
        assert!(painted.contains("\x1b[32mok\x1b[0m (3 ms)"), "{painted:?}");
        assert!(painted.contains("\x1b[1;31mFAILED\x1b[0m"), "{painted:?}");
        assert!(painted.contains("\x1b[1;31moutcome: failed\x1b[0m"), "{painted:?}");
        assert!(painted.ends_with("\nbook"), "whole words only: {painted:?}");
    }
}
