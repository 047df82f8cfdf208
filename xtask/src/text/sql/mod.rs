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
    /// Lex `text`; a leading byte order mark is removed first.
    pub fn lex(text: &str) -> Script {
        let (text, bom) = match text.strip_prefix('\u{feff}') {
            Some(rest) => (rest.to_string(), true),
            None => (text.to_string(), false),
        };
        let (statements, meta_commands, comments) = Lexer::new(&text).run();
        Script { text, bom, statements, meta_commands, comments }
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

    /// Every statement's text, as the Supabase CLI records them in the history row.
    pub fn statement_texts(&self) -> Vec<&str> {
        self.statements.iter().map(|s| self.code(s)).collect()
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
        ["BEGIN", ..] | ["START", "TRANSACTION", ..] | ["COMMIT", ..] | ["END", ..] | ["ROLLBACK", ..] => {
            Some("its own transaction control (BEGIN/COMMIT)")
        }
        _ => None,
    }
}

/// What a pass yields: the statements, the meta-commands, the comments' ranges.
type Lexed = (Vec<Statement>, Vec<(usize, String)>, Vec<(usize, usize)>);

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    i: usize,
    line: usize,
    statements: Vec<Statement>,
    meta: Vec<(usize, String)>,
    comments: Vec<(usize, usize)>,
    // The statement being read.
    code: Option<(usize, usize)>,
    code_end: usize,
    words: Vec<String>,
    concurrently: bool,
    paren_depth: i32,
    // psql's BEGIN ATOMIC heuristic: the first letters of CREATE / OR / REPLACE / FUNCTION /
    // PROCEDURE among the first four identifiers, the identifier count and the BEGIN depth.
    identifiers: [u8; 4],
    identifier_count: usize,
    begin_depth: i32,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            text,
            bytes: text.as_bytes(),
            i: 0,
            line: 1,
            statements: Vec::new(),
            meta: Vec::new(),
            comments: Vec::new(),
            code: None,
            code_end: 0,
            words: Vec::new(),
            concurrently: false,
            paren_depth: 0,
            identifiers: [0; 4],
            identifier_count: 0,
            begin_depth: 0,
        }
    }

    fn run(mut self) -> Lexed {
        while self.i < self.bytes.len() {
            let c = self.bytes[self.i];
            let next = self.bytes.get(self.i + 1).copied();
            let is_code = !(c.is_ascii_whitespace()
                || (c == b'-' && next == Some(b'-'))
                || (c == b'/' && next == Some(b'*'))
                || (c == b';' && self.paren_depth <= 0 && self.begin_depth == 0));
            match c {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                }
                b'-' if next == Some(b'-') => self.skip_line_comment(),
                b'/' if next == Some(b'*') => self.skip_block_comment(),
                b'\'' => {
                    self.mark_code();
                    let escapes = self.i > 0
                        && matches!(self.bytes[self.i - 1], b'e' | b'E')
                        && !is_ident_byte(self.i.checked_sub(2).map(|p| self.bytes[p]));
                    self.skip_quoted(b'\'', escapes);
                }
                b'"' => {
                    self.mark_code();
                    let start = self.i;
                    self.skip_quoted(b'"', false);
                    self.word(self.text[start..self.i].to_string());
                }
                b'$' if !is_ident_byte(self.i.checked_sub(1).map(|p| self.bytes[p])) && self.dollar_quote() => {}
                b'\\' => self.meta_command(),
                b'(' => {
                    self.mark_code();
                    self.paren_depth += 1;
                    self.i += 1;
                }
                b')' => {
                    self.mark_code();
                    self.paren_depth -= 1;
                    self.i += 1;
                }
                b';' if self.paren_depth <= 0 && self.begin_depth == 0 => {
                    self.finish(self.i, true);
                    self.i += 1;
                }
                c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => self.identifier(),
                c if c.is_ascii_whitespace() => self.i += 1,
                _ => {
                    self.mark_code();
                    self.i += 1;
                }
            }
            if is_code && self.code.is_some() {
                self.code_end = self.i;
            }
        }
        self.finish(self.bytes.len(), false);
        (self.statements, self.meta, self.comments)
    }

    fn mark_code(&mut self) {
        if self.code.is_none() {
            self.code = Some((self.i, self.line));
        }
    }

    fn word(&mut self, word: String) {
        if self.words.len() < 8 {
            self.words.push(word);
        }
    }

    fn finish(&mut self, end: usize, terminated: bool) {
        if let Some((code, line)) = self.code.take() {
            self.statements.push(Statement {
                code,
                end,
                code_end: self.code_end.max(code),
                terminated,
                line,
                end_line: self.line,
                words: std::mem::take(&mut self.words),
                concurrently: self.concurrently,
            });
        }
        self.words.clear();
        self.concurrently = false;
        self.paren_depth = 0;
        self.identifiers = [0; 4];
        self.identifier_count = 0;
        self.begin_depth = 0;
    }

    fn identifier(&mut self) {
        self.mark_code();
        let start = self.i;
        while self.i < self.bytes.len() && (is_ident_byte(Some(self.bytes[self.i])) || self.bytes[self.i] == b'$') {
            self.i += 1;
        }
        let word = &self.text[start..self.i];
        let upper = word.to_ascii_uppercase();
        if upper == "CONCURRENTLY" {
            self.concurrently = true;
        }
        if self.identifier_count < 4 && matches!(upper.as_str(), "CREATE" | "FUNCTION" | "PROCEDURE" | "OR" | "REPLACE")
        {
            self.identifiers[self.identifier_count] = upper.as_bytes()[0].to_ascii_lowercase();
        }
        self.identifier_count += 1;
        let ids = self.identifiers;
        let in_function = ids[0] == b'c'
            && (ids[1] == b'f'
                || ids[1] == b'p'
                || (ids[1] == b'o' && ids[2] == b'r' && (ids[3] == b'f' || ids[3] == b'p')));
        if in_function && self.paren_depth == 0 {
            match upper.as_str() {
                "BEGIN" => self.begin_depth += 1,
                "CASE" if self.begin_depth >= 1 => self.begin_depth += 1,
                "END" if self.begin_depth > 0 => self.begin_depth -= 1,
                _ => {}
            }
        }
        self.word(upper);
    }

    fn skip_line_comment(&mut self) {
        let start = self.i;
        while self.i < self.bytes.len() && self.bytes[self.i] != b'\n' {
            self.i += 1;
        }
        self.comments.push((start, self.i));
    }

    fn skip_block_comment(&mut self) {
        let start = self.i;
        self.block_comment();
        self.comments.push((start, self.i));
    }

    fn block_comment(&mut self) {
        let mut depth = 0;
        while self.i < self.bytes.len() {
            match (self.bytes[self.i], self.bytes.get(self.i + 1).copied()) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    self.i += 2;
                }
                (b'*', Some(b'/')) => {
                    depth -= 1;
                    self.i += 2;
                    if depth == 0 {
                        return;
                    }
                }
                (b'\n', _) => {
                    self.line += 1;
                    self.i += 1;
                }
                _ => self.i += 1,
            }
        }
    }

    fn skip_quoted(&mut self, quote: u8, backslash_escapes: bool) {
        self.i += 1;
        while self.i < self.bytes.len() {
            let c = self.bytes[self.i];
            if c == b'\n' {
                self.line += 1;
            }
            if backslash_escapes && c == b'\\' {
                if self.bytes.get(self.i + 1) == Some(&b'\n') {
                    self.line += 1;
                }
                self.i += 2;
                continue;
            }
            if c == quote {
                if self.bytes.get(self.i + 1) == Some(&quote) {
                    self.i += 2;
                    continue;
                }
                self.i += 1;
                return;
            }
            self.i += 1;
        }
    }

    /// `$tag$ ... $tag$`; false when the `$` opens no dollar quote (e.g. a `$1` parameter).
    fn dollar_quote(&mut self) -> bool {
        let rest = &self.text[self.i + 1..];
        let Some(tag_len) = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')) else { return false };
        let tag = &rest[..tag_len];
        if !rest[tag_len..].starts_with('$') || tag.starts_with(|c: char| c.is_ascii_digit()) {
            return false;
        }
        self.mark_code();
        let delimiter = &self.text[self.i..self.i + tag_len + 2];
        let body = self.i + delimiter.len();
        let end = self.text[body..].find(delimiter).map_or(self.bytes.len(), |n| body + n + delimiter.len());
        self.line += self.bytes[self.i..end].iter().filter(|b| **b == b'\n').count();
        self.i = end;
        true
    }

    /// A backslash outside quotes and comments: psql takes it as a meta-command.
    fn meta_command(&mut self) {
        self.mark_code();
        let start = self.i;
        let end = self.text[start..].find('\n').map_or(self.bytes.len(), |n| start + n);
        let mut shown: String = self.text[start..end].trim_end().chars().take(60).collect();
        if end - start > shown.len() {
            shown.push('…');
        }
        self.meta.push((self.line, shown));
        // `\;` only joins statements; every other meta-command runs to the end of the line.
        self.i = if self.bytes.get(start + 1) == Some(&b';') { start + 2 } else { end };
    }
}

fn is_ident_byte(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80)
}

#[cfg(test)]
mod tests;
