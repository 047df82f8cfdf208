//! Reads that ride in another query string's round trip. Each read is a query of one text column
//! whose values are one line each (hex, JSON); it is sent as `select r.v as <column> from (QUERY)
//! r(v)` under a column name made of a random secret, and psql prints its rows in its aligned
//! format among whatever else the string prints (the connectivity check's table, a chain's
//! transcript). [`Capture`] takes each read's table out of the stream as it goes by, and hands
//! every other line on: the transcript stays what psql printed for the rest.
//!
//! A read whose statement failed (or never ran, after an earlier error in the string) has no
//! footer: it comes back as missing, and its caller reads it again alone or does without. Lines
//! that come once the first read has begun (a read's error) are kept apart from the transcript.

use anyhow::Result;

use crate::process::Tee;

/// The reads of one query string.
pub struct Reads {
    columns: Vec<String>,
    queries: Vec<String>,
}

impl Reads {
    pub fn new(queries: &[String]) -> Reads {
        let secret = crate::process::psql::nonce();
        let columns = (0..queries.len()).map(|k| format!("rehearsal_read_{secret}_{k}")).collect();
        Reads { columns, queries: queries.to_vec() }
    }

    /// Each read as a statement (no terminator), in order.
    pub fn statements(&self) -> Vec<String> {
        self.columns
            .iter()
            .zip(&self.queries)
            .map(|(column, query)| {
                format!("select r.v as {column} from ({}) r(v)", query.trim_end().trim_end_matches(';'))
            })
            .collect()
    }

    /// A capture of these reads from a stream whose other lines go to `inner`.
    pub fn capture<'r, 't>(&'r self, inner: Option<&'t mut dyn Tee>) -> Capture<'r, 't> {
        Capture {
            reads: self,
            inner,
            parts: vec![None; self.queries.len()],
            at: None,
            began: false,
            text: String::new(),
            among: String::new(),
        }
    }
}

/// Where the capture is in a read's table.
#[derive(Clone, Copy)]
enum At {
    /// Its column name was seen: the rule comes next.
    Header(usize),
    Rows(usize),
    /// Its footer was seen: the blank line under it comes next.
    Footer,
}

/// The stream with the reads taken out ([`Reads::capture`]).
pub struct Capture<'r, 't> {
    reads: &'r Reads,
    inner: Option<&'t mut dyn Tee>,
    parts: Vec<Option<Vec<String>>>,
    at: Option<At>,
    /// The first read has begun.
    began: bool,
    /// What went on to the transcript, and what came among the reads.
    text: String,
    among: String,
}

/// What a capture took apart.
pub struct Captured {
    /// Each read's lines, `None` for one that did not come back whole.
    pub parts: Vec<Option<Vec<String>>>,
    /// The lines before the first read (the transcript's).
    pub text: String,
    /// Lines among the reads that are none of them (why one failed).
    pub among: String,
}

impl Capture<'_, '_> {
    pub fn finish(self) -> Captured {
        let open = match self.at {
            Some(At::Header(k)) | Some(At::Rows(k)) => Some(k),
            _ => None,
        };
        let mut parts = self.parts;
        if let Some(k) = open {
            parts[k] = None;
        }
        Captured { parts, text: self.text, among: self.among }
    }
}

impl Tee for Capture<'_, '_> {
    fn tee(&mut self, line: &str) -> Result<()> {
        match self.at {
            Some(At::Header(k)) if !line.is_empty() && line.bytes().all(|b| b == b'-') => {
                self.at = Some(At::Rows(k));
                self.parts[k] = Some(Vec::new());
                return Ok(());
            }
            Some(At::Rows(k)) => {
                if let Some(value) = line.strip_prefix(' ') {
                    self.parts[k].as_mut().expect("opened at the rule").push(value.to_string());
                    return Ok(());
                }
                if line.starts_with('(') && (line.ends_with(" row)") || line.ends_with(" rows)")) {
                    self.at = Some(At::Footer);
                    return Ok(());
                }
                // Not a row of the table (an error cut it short): it is not whole.
                self.parts[k] = None;
                self.at = None;
            }
            Some(At::Footer) => {
                self.at = None;
                if line.is_empty() {
                    return Ok(());
                }
            }
            _ => self.at = None,
        }
        if let Some(k) = self.reads.columns.iter().position(|c| c == line.trim()) {
            self.at = Some(At::Header(k));
            self.began = true;
            return Ok(());
        }
        if self.began {
            self.among.push_str(line);
            self.among.push('\n');
            return Ok(());
        }
        self.text.push_str(line);
        self.text.push('\n');
        match self.inner.as_deref_mut() {
            Some(inner) => inner.tee(line),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_come_out_of_the_stream_and_the_rest_goes_on() {
        let reads = Reads::new(&["select 'a'".to_string(), "select 'b'".to_string(), "select 'c'".to_string()]);
        let [a, b, c] = [0, 1, 2].map(|k| reads.columns[k].clone());
        let mut rest: Vec<String> = Vec::new();
        let mut capture = reads.capture(Some(&mut rest));
        let lines = [
            " current_database ".to_string(),
            "------------------".into(),
            " postgres".into(),
            "(1 row)".into(),
            "".into(),
            format!("    {a}    "),
            "-".repeat(20),
            " 6162".into(),
            " 6364".into(),
            "(2 rows)".into(),
            "".into(),
            format!(" {b} "),
            "-".repeat(20),
            "(0 rows)".into(),
            "".into(),
            format!(" {c} "),
            "-".repeat(20),
            "psql:x:1: ERROR:  boom".into(),
        ];
        for line in &lines {
            capture.tee(line).unwrap();
        }
        let captured = capture.finish();
        let parts = captured.parts;
        assert_eq!(parts[0], Some(vec!["6162".to_string(), "6364".to_string()]));
        assert_eq!(parts[1], Some(vec![]));
        assert_eq!(parts[2], None, "a read cut short by an error is not whole");
        assert_eq!(rest, [" current_database ", "------------------", " postgres", "(1 row)", ""]);
        assert_eq!(captured.among, "psql:x:1: ERROR:  boom\n", "a read's error is kept apart from the transcript");
        assert!(reads.statements()[0].ends_with("from (select 'a') r(v)"));
    }
}
