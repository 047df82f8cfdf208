//! The lexer behind [`super::Script`]: one pass over the text, as psql's own scanner splits it:
//! statements at `;` outside quotes, comments, parentheses and BEGIN ATOMIC bodies; comments,
//! quoted ranges and meta-commands on the side.

use super::Statement;

/// What a pass yields: the statements, the meta-commands, the comments' ranges.
type Lexed = (Vec<Statement>, Vec<(usize, String)>, Vec<(usize, usize)>, Vec<(usize, usize)>, Option<usize>);

pub(super) struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    i: usize,
    line: usize,
    statements: Vec<Statement>,
    meta: Vec<(usize, String)>,
    comments: Vec<(usize, usize)>,
    quoted: Vec<(usize, usize)>,
    unterminated: Option<usize>,
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
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            text,
            bytes: text.as_bytes(),
            i: 0,
            line: 1,
            statements: Vec::new(),
            meta: Vec::new(),
            comments: Vec::new(),
            quoted: Vec::new(),
            unterminated: None,
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

    pub fn run(mut self) -> Lexed {
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
                    let start = self.i;
                    self.skip_quoted(b'\'', escapes);
                    self.quoted.push((start, self.i));
                }
                b'"' => {
                    self.mark_code();
                    let start = self.i;
                    self.skip_quoted(b'"', false);
                    self.quoted.push((start, self.i));
                    self.word(self.text[start..self.i].to_string());
                }
                b'$' if !is_ident_byte(self.i.checked_sub(1).map(|p| self.bytes[p])) && {
                    let start = self.i;
                    let quoted = self.dollar_quote();
                    if quoted {
                        self.quoted.push((start, self.i));
                    }
                    quoted
                } => {}
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
        (self.statements, self.meta, self.comments, self.quoted, self.unterminated)
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
        self.quoted.push((start, self.i));
    }

    fn block_comment(&mut self) {
        let opened = self.line;
        self.unterminated_from(opened);
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
                        self.closed(opened);
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
        let opened = self.line;
        self.unterminated_from(opened);
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
                self.closed(opened);
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
        let end = match self.text[body..].find(delimiter) {
            Some(n) => body + n + delimiter.len(),
            None => {
                self.unterminated_from(self.line);
                self.bytes.len()
            }
        };
        self.line += self.bytes[self.i..end].iter().filter(|b| **b == b'\n').count();
        self.i = end;
        true
    }

    /// A quote or comment opens on `line`: unterminated until [`Lexer::closed`] says otherwise.
    fn unterminated_from(&mut self, line: usize) {
        if self.unterminated.is_none() {
            self.unterminated = Some(line);
        }
    }

    fn closed(&mut self, line: usize) {
        if self.unterminated == Some(line) {
            self.unterminated = None;
        }
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
