//! A small SQL lexer, in one linear pass: enough to split a migration into statements where psql
//! would (for the history row's `statements`, as the Supabase CLI stores them, and for sending a
//! file as one batch), to find statements that cannot run inside a transaction block, and to find
//! psql meta-commands (`\i`, `\!`, `\q`, ...), which a migration must not hold.
//!
//! It knows what can hide a `;`: quotes, `E''` escapes, dollar quotes, line and (nested) block
//! comments, parentheses, and the `BEGIN ATOMIC ... END` body of a SQL-standard function, which
//! it tracks with psql's own heuristic (`CREATE [OR REPLACE] FUNCTION|PROCEDURE`, then
//! `BEGIN`/`CASE`/`END` at parenthesis depth 0). A leading UTF-8 byte order mark is removed.

/// A SQL file, lexed.
#[derive(Clone, Debug)]
pub struct Script {
    /// The text, without a leading byte order mark.
    pub text: String,
    /// Whether the file started with a UTF-8 byte order mark.
    pub bom: bool,
    pub statements: Vec<Statement>,
    /// psql meta-commands outside quotes and comments: 1-based line and the command as written.
    pub meta_commands: Vec<(usize, String)>,
    /// Byte ranges of the comments, in order.
    comments: Vec<(usize, usize)>,
    /// The line where a quote or block comment opens that the file never closes.
    pub unterminated: Option<usize>,
    /// Byte ranges of the quoted strings, quoted identifiers, dollar quotes and block comments,
    /// in order: where a line break does not end psql's input line as SQL.
    quoted: Vec<(usize, usize)>,
    /// The offset of every `;` that ends a statement, empty statements' too.
    pub terminators: Vec<usize>,
    /// The byte ranges of `COPY ... FROM STDIN` data (psql reads them as data, not SQL).
    pub copy_data: Vec<(usize, usize)>,
    /// psql variable references (`:name`, `:'name'`, `:"name"`, `:{?name}`) outside quotes and
    /// comments, as written, with their 1-based line.
    pub variables: Vec<(usize, String)>,
}

/// One statement of a [`Script`]: byte offsets into `Script::text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// Where its first character that is not whitespace or a comment is.
    pub code: usize,
    /// The offset of its terminating `;`, or the end of the text.
    pub end: usize,
    /// Just after its last character that is not whitespace or a comment.
    pub code_end: usize,
    /// Whether a `;` ends it (the last statement of a file may lack one).
    pub terminated: bool,
    /// 1-based lines of its first code character and of its end.
    pub line: usize,
    pub end_line: usize,
    /// Up to eight leading words, upper-cased (quoted identifiers as written).
    pub words: Vec<String>,
    /// Whether the word CONCURRENTLY occurs anywhere in it.
    pub concurrently: bool,
}

impl Script {
    /// Lex `text` as psql does with `standard_conforming_strings` on; a leading byte order mark
    /// is removed first.
    pub fn lex(text: &str) -> Script {
        Script::lex_with(text, true)
    }

    /// Lex `text` as psql does with the server's `standard_conforming_strings` as given (off:
    /// a plain quote takes backslash escapes).
    pub fn lex_with(text: &str, std_strings: bool) -> Script {
        let (text, bom) = match text.strip_prefix('\u{feff}') {
            Some(rest) => (rest.to_string(), true),
            None => (text.to_string(), false),
        };
        let lexed = Lexer::new(&text, std_strings).run();
        Script {
            text,
            bom,
            statements: lexed.statements,
            meta_commands: lexed.meta,
            comments: lexed.comments,
            unterminated: lexed.unterminated,
            quoted: lexed.quoted,
            terminators: lexed.terminators,
            copy_data: lexed.copy_data,
            variables: lexed.variables,
        }
    }

    /// The statements the Supabase CLI would store in the history row for this file.
    pub fn history_statements(&self) -> Vec<String> {
        if self.bom {
            cli::supabase_split(&format!("\u{feff}{}", self.text))
        } else {
            cli::supabase_split(&self.text)
        }
    }

    /// psql variables a reference would be replaced with: psql's own (set in every session, some
    /// changing after each query) and the tool's. The Supabase CLI sends the text as written.
    pub fn psql_variable(&self) -> Option<&(usize, String)> {
        self.variables.iter().find(|(_, name)| is_psql_variable(name))
    }

    /// Per line (index 0 is line 1): whether it starts inside a quote or a block comment. psql
    /// skips an empty input line unless one is open, so the server's `LINE n` counts only the
    /// lines it kept.
    pub fn quoted_line_starts(&self) -> Vec<bool> {
        let mut quoted = Vec::new();
        let mut start = 0;
        let mut span = 0;
        for line in self.text.split('\n') {
            while span < self.quoted.len() && self.quoted[span].1 <= start {
                span += 1;
            }
            quoted.push(self.quoted.get(span).is_some_and(|(a, b)| *a < start && start < *b));
            start += line.len() + 1;
        }
        quoted
    }

    /// The statement's text from its first code character to its end, trimmed.
    pub fn code(&self, s: &Statement) -> &str {
        self.text[s.code..s.end].trim_end()
    }

    /// The statement's text from its first to its last code character.
    pub fn tight(&self, s: &Statement) -> &str {
        &self.text[s.code..s.code_end]
    }

    /// The statement's code with its comments replaced by a space each.
    pub fn plain(&self, s: &Statement) -> String {
        let first = self.comments.partition_point(|(_, end)| *end <= s.code);
        let mut out = String::with_capacity(s.end - s.code);
        let mut at = s.code;
        for &(start, end) in self.comments[first..].iter().take_while(|(start, _)| *start < s.end) {
            out.push_str(&self.text[at.min(start)..start]);
            out.push(' ');
            at = end;
        }
        if at < s.end {
            out.push_str(&self.text[at..s.end]);
        }
        out
    }

    /// Every statement's text as psql sends it.
    pub fn statement_texts(&self) -> Vec<&str> {
        self.statements.iter().map(|s| self.code(s)).collect()
    }

    /// Why this file must reach the server as psql -f sends it, one statement at a time, rather
    /// than in one string: COPY data follows a statement, or a setting changes how psql and the
    /// server read the statements after it.
    pub fn needs_psql_f(&self) -> Option<&'static str> {
        if !self.copy_data.is_empty() {
            return Some("COPY ... FROM STDIN (its data follows the statement)");
        }
        let lower = self.text.to_ascii_lowercase();
        if lower.contains("standard_conforming_strings") || lower.contains("backslash_quote") {
            return Some("a setting that changes how the statements after it are read (standard_conforming_strings)");
        }
        None
    }

    /// The first statement that cannot run in a transaction block, with why.
    pub fn first_non_transactional(&self) -> Option<(&'static str, usize)> {
        self.statements.iter().find_map(|s| non_transactional(s).map(|why| (why, s.line)))
    }
}

/// Why a statement cannot run inside a transaction block, if it cannot.
pub fn non_transactional(s: &Statement) -> Option<&'static str> {
    let w: Vec<&str> = s.words.iter().map(String::as_str).collect();
    let has = |word: &str| w.contains(&word);
    match w.as_slice() {
        ["CREATE", "INDEX", "CONCURRENTLY", ..] | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => {
            Some("CREATE INDEX CONCURRENTLY")
        }
        ["DROP", "INDEX", "CONCURRENTLY", ..] => Some("DROP INDEX CONCURRENTLY"),
        ["REINDEX", ..] if s.concurrently => Some("REINDEX CONCURRENTLY"),
        ["ALTER", "TABLE", ..] if has("DETACH") && s.concurrently => Some("DETACH PARTITION CONCURRENTLY"),
        ["VACUUM", ..] => Some("VACUUM"),
        ["CREATE", "DATABASE", ..] => Some("CREATE DATABASE"),
        ["DROP", "DATABASE", ..] => Some("DROP DATABASE"),
        ["CREATE", "TABLESPACE", ..] => Some("CREATE TABLESPACE"),
        ["DROP", "TABLESPACE", ..] => Some("DROP TABLESPACE"),
        ["ALTER", "SYSTEM", ..] => Some("ALTER SYSTEM"),
        ["BEGIN", ..]
        | ["START", "TRANSACTION", ..]
        | ["COMMIT", ..]
        | ["END", ..]
        | ["ROLLBACK", ..]
        | ["ABORT", ..] => Some("its own transaction control (BEGIN/COMMIT)"),
        ["SET", "TRANSACTION", ..] => Some("SET TRANSACTION (which must open its own transaction)"),
        _ => None,
    }
}

/// A reference psql replaces: `:{?name}` always, the others when psql defines the name in every
/// session (or the tool in its own).
fn is_psql_variable(reference: &str) -> bool {
    if reference.starts_with(":{?") {
        return true;
    }
    let name = reference.trim_start_matches(':').trim_matches(|c| c == '\'' || c == '"');
    const PSQL: [&str; 37] = [
        "AUTOCOMMIT",
        "COMP_KEYWORD_CASE",
        "DBNAME",
        "ECHO",
        "ECHO_HIDDEN",
        "ENCODING",
        "ERROR",
        "FETCH_COUNT",
        "HIDE_TABLEAM",
        "HIDE_TOAST_COMPRESSION",
        "HISTCONTROL",
        "HISTFILE",
        "HISTSIZE",
        "HOST",
        "IGNOREEOF",
        "LASTOID",
        "LAST_ERROR_MESSAGE",
        "LAST_ERROR_SQLSTATE",
        "ON_ERROR_ROLLBACK",
        "ON_ERROR_STOP",
        "PORT",
        "PROMPT1",
        "PROMPT2",
        "PROMPT3",
        "QUIET",
        "ROW_COUNT",
        "SERVER_VERSION_NAME",
        "SERVER_VERSION_NUM",
        "SHOW_ALL_RESULTS",
        "SHOW_CONTEXT",
        "SINGLELINE",
        "SINGLESTEP",
        "SQLSTATE",
        "USER",
        "VERBOSITY",
        "VERSION",
        "VERSION_NAME",
    ];
    PSQL.contains(&name) || name == "VERSION_NUM" || name.starts_with("rehearsal_")
}

mod cli;
pub mod ident;
mod lexer;

use lexer::Lexer;

#[cfg(test)]
mod tests;
