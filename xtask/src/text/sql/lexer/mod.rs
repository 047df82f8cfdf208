//! The lexer behind [`super::Script`]: one pass over the text, a port of psql 15's own scanner
//! (`src/fe_utils/psqlscan.l`) for everything that decides where a statement ends: statements at
//! `;` outside quotes, comments, parentheses and BEGIN ATOMIC bodies; comments, quoted ranges,
//! meta-commands and psql variable references on the side.
//!
//! Where it follows psql rather than the server: psql reads a file line by line, so no token
//! spans a line break (a quoted string continued on the next line is, for psql, a new string;
//! only a carriage return inside a line continues one); a prefix (`E'`, `B'`, `X'`, `U&'`, `N'`)
//! counts only where a token starts, so `1e'x'` is a number and a plain string; a `$` opens a
//! dollar quote only where a token starts, after a number or a parameter too (`1$a$`); a tag's
//! letters are ASCII letters, `_` and any byte from 0x80, digits after the first; `)` never takes
//! the depth below zero; a `--` comment ends at a carriage return as well as a line feed.

use super::Statement;

mod tokens;

/// What a pass yields.
pub(super) struct Lexed {
    pub statements: Vec<Statement>,
    pub meta: Vec<(usize, String)>,
    pub comments: Vec<(usize, usize)>,
    pub quoted: Vec<(usize, usize)>,
    pub unterminated: Option<usize>,
    /// Every `;` that ends a statement, the empty ones too.
    pub terminators: Vec<usize>,
    /// The byte ranges of `COPY ... FROM STDIN` data in the file.
    pub copy_data: Vec<(usize, usize)>,
    /// psql variable references outside quotes, as written (`:name`, `:'name'`, `:"name"`,
    /// `:{?name}`), with their line.
    pub variables: Vec<(usize, String)>,
}

/// The quoted states psql's scanner has, by what ends them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    /// `'...'` with `''` doubling (standard strings, `U&'...'`).
    Plain,
    /// `E'...'` (or a plain quote with standard_conforming_strings off): backslash escapes too.
    Escaped,
    /// `B'...'`, `X'...'`: no doubling inside (a `''` closes and opens a new string).
    Bits,
}

pub(super) struct Lexer<'a> {
    bytes: &'a [u8],
    text: &'a str,
    std_strings: bool,
    i: usize,
    line: usize,
    out: Lexed,
    // The statement being read.
    code: Option<(usize, usize)>,
    code_end: usize,
    words: Vec<String>,
    concurrently: bool,
    /// COPY data ahead, to skip when the lexer gets to it.
    skip: Option<(usize, usize)>,
    /// The statement is `COPY ... FROM STDIN`: 0 no, 1 it starts with COPY, 2 FROM seen, 3 STDIN.
    copy: u8,
    paren_depth: u32,
    // psql's BEGIN ATOMIC heuristic: the first letters of CREATE / OR / REPLACE / FUNCTION /
    // PROCEDURE among the first four identifiers, the identifier count and the BEGIN depth.
    identifiers: [u8; 4],
    identifier_count: usize,
    begin_depth: u32,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str, std_strings: bool) -> Lexer<'a> {
        Lexer {
            bytes: text.as_bytes(),
            text,
            std_strings,
            i: 0,
            line: 1,
            out: Lexed {
                statements: Vec::new(),
                meta: Vec::new(),
                comments: Vec::new(),
                quoted: Vec::new(),
                unterminated: None,
                terminators: Vec::new(),
                copy_data: Vec::new(),
                variables: Vec::new(),
            },
            code: None,
            code_end: 0,
            words: Vec::new(),
            concurrently: false,
            copy: 0,
            skip: None,
            paren_depth: 0,
            identifiers: [0; 4],
            identifier_count: 0,
            begin_depth: 0,
        }
    }

    fn at(&self, k: usize) -> Option<u8> {
        self.bytes.get(self.i + k).copied()
    }

    pub fn run(mut self) -> Lexed {
        while self.i < self.bytes.len() {
            if let Some((start, end)) = self.skip.filter(|(start, _)| self.i >= *start) {
                self.skip = None;
                self.i = start;
                self.advance_to(end);
                continue;
            }
            let c = self.bytes[self.i];
            match (c, self.at(1)) {
                (b'\n', _) => {
                    self.line += 1;
                    self.i += 1;
                }
                (b' ' | b'\t' | b'\r' | b'\x0c', _) => self.i += 1,
                (b'-', Some(b'-')) => self.line_comment(),
                (b'/', Some(b'*')) => self.block_comment(),
                (b'\'', _) => self.string(1, if self.std_strings { Quote::Plain } else { Quote::Escaped }),
                (b'e' | b'E', Some(b'\'')) => self.string(2, Quote::Escaped),
                (b'b' | b'B' | b'x' | b'X', Some(b'\'')) => self.string(2, Quote::Bits),
                // `N'...'`: psql eats the `n` alone; the quote is a plain one.
                (b'n' | b'N', Some(b'\'')) => self.token(1),
                (b'u' | b'U', Some(b'&')) => match self.at(2) {
                    Some(b'\'') => self.string(3, Quote::Plain),
                    Some(b'"') => self.quoted_identifier(3),
                    // `U&` that opens nothing: the `u` alone, not an identifier.
                    _ => self.token(1),
                },
                (b'"', _) => self.quoted_identifier(1),
                (b'$', _) => self.dollar(),
                (b'0'..=b'9', _) => self.number(),
                (b'.', Some(b'0'..=b'9')) => self.number(),
                (b'.', Some(b'.')) => self.token(2),
                (b'\\', _) => self.backslash(),
                (b':', _) => self.colon(),
                (b'(', _) => {
                    self.paren_depth += 1;
                    self.token(1);
                }
                (b')', _) => {
                    self.paren_depth = self.paren_depth.saturating_sub(1);
                    self.token(1);
                }
                (b';', _) if self.paren_depth == 0 && self.begin_depth == 0 => {
                    self.out.terminators.push(self.i);
                    let copy = self.copy == 3;
                    self.finish(self.i, true);
                    self.i += 1;
                    if copy {
                        self.copy_data();
                    }
                }
                (c, _) if is_ident_start(c) => self.identifier(),
                _ => self.token(1),
            }
        }
        self.finish(self.bytes.len(), false);
        self.out
    }

    /// `n` bytes of code that are not an identifier.
    fn token(&mut self, n: usize) {
        self.mark_code();
        self.i += n;
        self.code_end = self.i;
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
            self.out.statements.push(Statement {
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
        self.copy = 0;
        self.paren_depth = 0;
        self.identifiers = [0; 4];
        self.identifier_count = 0;
        self.begin_depth = 0;
    }

    /// Skip `n` bytes, counting line breaks.
    fn advance_to(&mut self, end: usize) {
        self.line += self.bytes[self.i..end].iter().filter(|b| **b == b'\n').count();
        self.i = end;
    }

    fn identifier(&mut self) {
        self.mark_code();
        let start = self.i;
        self.i += 1;
        while self.at(0).is_some_and(is_ident_cont) {
            self.i += 1;
        }
        self.code_end = self.i;
        let upper = self.text[start..self.i].to_ascii_uppercase();
        if upper == "CONCURRENTLY" {
            self.concurrently = true;
        }
        self.copy = match (self.copy, upper.as_str()) {
            (0, "COPY") if self.identifier_count == 0 => 1,
            (1, "FROM") => 2,
            (2, "STDIN") => 3,
            (2, _) => 1,
            (c, _) => c,
        };
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

    /// A backslash outside quotes and comments: `\;` and `\:` put the character into the query
    /// (`\;` without sending it); anything else is a meta-command, to the end of the line.
    fn backslash(&mut self) {
        self.mark_code();
        let start = self.i;
        let end = self.text[start..].find('\n').map_or(self.bytes.len(), |n| start + n);
        let mut shown: String = self.text[start..end].trim_end().chars().take(60).collect();
        if end - start > shown.len() {
            shown.push('…');
        }
        self.out.meta.push((self.line, shown));
        match self.at(1) {
            Some(b';') => {
                self.identifier_count = 0;
                self.i += 2;
            }
            Some(b':') => self.i += 2,
            _ => self.i = end,
        }
        self.code_end = self.i;
    }

    /// A quote or comment opens on `line`: unterminated until [`Lexer::closed`] says otherwise.
    fn unterminated_from(&mut self, line: usize) {
        if self.out.unterminated.is_none() {
            self.out.unterminated = Some(line);
        }
    }

    fn closed(&mut self, line: usize) {
        if self.out.unterminated == Some(line) {
            self.out.unterminated = None;
        }
    }
}

/// psql's `ident_start`: ASCII letters, `_`, any byte from 0x80.
fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// psql's `ident_cont`: those, digits and `$`.
fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// psql's `variable_char`: letters, `_`, bytes from 0x80, digits.
fn is_variable_char(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}
