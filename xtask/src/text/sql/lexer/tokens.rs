//! The lexer's tokens that can hide a `;` or move a token's start: comments, strings and their
//! continuations, quoted identifiers, dollar quotes, numbers, psql variables, COPY data.

use super::{is_ident_cont, is_ident_start, is_variable_char, Lexer, Quote};

impl Lexer<'_> {
    /// psql's `integer`, `decimal`, `real` and their `_junk` forms (a number followed by an
    /// identifier is one token), `realfail` (`1e+`) and `decimalfail` (`1..`).
    pub(super) fn number(&mut self) {
        self.mark_code();
        let digits = |b: &[u8], mut k: usize| {
            while b.get(k).is_some_and(u8::is_ascii_digit) {
                k += 1;
            }
            k
        };
        let b = self.bytes;
        let mut k = digits(b, self.i);
        if b.get(k) == Some(&b'.') && b.get(k + 1) != Some(&b'.') {
            k = digits(b, k + 1);
        }
        if matches!(b.get(k), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(b.get(k + 1), Some(b'+' | b'-')));
            let after = digits(b, k + 1 + sign);
            if after > k + 1 + sign {
                k = after;
            } else if sign == 1 {
                // realfail: the number, the `e` and the sign, nothing after.
                self.i = k + 2;
                self.code_end = self.i;
                return;
            }
        }
        if b.get(k).copied().is_some_and(is_ident_start) {
            k += 1;
            while b.get(k).copied().is_some_and(is_ident_cont) {
                k += 1;
            }
        }
        self.i = k;
        self.code_end = k;
    }

    /// After `COPY ... FROM STDIN;` psql reads the next lines as data, up to a line `\.` (or the
    /// end of the file), and lexes none of them: the rest of the statement's line, then the data.
    pub(super) fn copy_data(&mut self) {
        let b = self.bytes;
        let Some(n) = b[self.i..].iter().position(|c| *c == b'\n') else { return };
        let start = self.i + n + 1;
        let mut k = start;
        let end = loop {
            if k >= b.len() {
                break b.len();
            }
            let eol = b[k..].iter().position(|c| *c == b'\n').map_or(b.len(), |n| k + n);
            if b[k..eol].strip_suffix(b"\r").unwrap_or(&b[k..eol]) == b"\\." {
                break eol;
            }
            if eol == b.len() {
                break eol;
            }
            k = eol + 1;
        };
        // The rest of the statement's line is lexed first, then the data is skipped whole.
        self.out.copy_data.push((start, end));
        self.out.quoted.push((start, end));
        self.skip = Some((start, end));
    }

    pub(super) fn line_comment(&mut self) {
        let start = self.i;
        while self.at(0).is_some_and(|b| b != b'\n' && b != b'\r') {
            self.i += 1;
        }
        self.out.comments.push((start, self.i));
    }

    pub(super) fn block_comment(&mut self) {
        let start = self.i;
        let opened = self.line;
        self.unterminated_from(opened);
        let mut depth = 0;
        while self.i < self.bytes.len() {
            match (self.bytes[self.i], self.at(1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    self.i += 2;
                }
                (b'*', Some(b'/')) => {
                    depth -= 1;
                    self.i += 2;
                    if depth == 0 {
                        self.closed(opened);
                        break;
                    }
                }
                (b'\n', _) => {
                    self.line += 1;
                    self.i += 1;
                }
                _ => self.i += 1,
            }
        }
        self.out.comments.push((start, self.i));
        self.out.quoted.push((start, self.i));
    }

    /// A string whose opening (prefix and quote) is `open` bytes long, up to its closing quote,
    /// then any continuation psql sees on the same line.
    pub(super) fn string(&mut self, open: usize, quote: Quote) {
        self.mark_code();
        let start = self.i;
        let mut opened = self.line;
        self.unterminated_from(opened);
        self.i += open;
        loop {
            let Some(c) = self.at(0) else {
                self.out.quoted.push((start, self.i));
                return;
            };
            match c {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                }
                b'\\' if quote == Quote::Escaped => {
                    if self.at(1) == Some(b'\n') {
                        self.line += 1;
                    }
                    self.i = (self.i + 2).min(self.bytes.len());
                }
                b'\'' if quote != Quote::Bits && self.at(1) == Some(b'\'') => self.i += 2,
                b'\'' => {
                    self.i += 1;
                    self.closed(opened);
                    match self.continuation() {
                        Some(next) => {
                            opened = self.line;
                            self.unterminated_from(opened);
                            self.i = next;
                        }
                        None => break,
                    }
                }
                _ => self.i += 1,
            }
        }
        self.code_end = self.i;
        self.out.quoted.push((start, self.i));
    }

    /// psql's `quotecontinue` after a closing quote, within one input line: horizontal space or
    /// comments, a carriage return, more space or comments ending in one, and a quote. Where the
    /// text after that quote starts, if so.
    pub(super) fn continuation(&self) -> Option<usize> {
        let b = self.bytes;
        let mut k = self.i;
        let comment = |mut k: usize| {
            while b.get(k).is_some_and(|c| *c != b'\n' && *c != b'\r') {
                k += 1;
            }
            k
        };
        let mut newline = false;
        loop {
            match (b.get(k).copied(), b.get(k + 1).copied()) {
                (Some(b' ' | b'\t' | b'\x0c'), _) => k += 1,
                (Some(b'\r'), _) => {
                    newline = true;
                    k += 1;
                }
                (Some(b'-'), Some(b'-')) => {
                    k = comment(k);
                    // After the carriage return, a comment must end in one.
                    if newline && b.get(k) != Some(&b'\r') {
                        return None;
                    }
                }
                (Some(b'\''), _) if newline => return Some(k + 1),
                _ => return None,
            }
        }
    }

    pub(super) fn quoted_identifier(&mut self, open: usize) {
        self.mark_code();
        let start = self.i;
        let opened = self.line;
        self.unterminated_from(opened);
        self.i += open;
        while let Some(c) = self.at(0) {
            match c {
                b'\n' => self.line += 1,
                b'"' if self.at(1) == Some(b'"') => self.i += 1,
                b'"' => {
                    self.i += 1;
                    self.closed(opened);
                    break;
                }
                _ => {}
            }
            self.i += 1;
        }
        self.code_end = self.i;
        self.out.quoted.push((start, self.i));
        self.word(self.text[start..self.i].to_string());
    }

    /// A `$` where a token starts: a dollar quote (`$tag$ ... $tag$`), a parameter (`$1`, and
    /// `$1abc` as one token), else the `$` alone.
    pub(super) fn dollar(&mut self) {
        let b = self.bytes;
        let mut k = self.i + 1;
        if b.get(k).copied().is_some_and(is_ident_start) && !b[k].is_ascii_digit() {
            k += 1;
            while b.get(k).is_some_and(|c| is_ident_cont(*c) && *c != b'$') {
                k += 1;
            }
        }
        if b.get(k) == Some(&b'$') {
            let start = self.i;
            self.mark_code();
            let delimiter = &b[self.i..=k];
            let body = k + 1;
            let end = match b[body..].windows(delimiter.len()).position(|w| w == delimiter) {
                Some(n) => body + n + delimiter.len(),
                None => {
                    self.unterminated_from(self.line);
                    b.len()
                }
            };
            self.advance_to(end);
            self.code_end = end;
            self.out.quoted.push((start, end));
            return;
        }
        if self.at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.mark_code();
            let mut k = self.i + 1;
            while b.get(k).is_some_and(u8::is_ascii_digit) {
                k += 1;
            }
            if b.get(k).copied().is_some_and(is_ident_start) {
                while b.get(k).copied().is_some_and(is_ident_cont) {
                    k += 1;
                }
            }
            self.i = k;
            self.code_end = k;
            return;
        }
        self.token(1);
    }

    /// `:name`, `:'name'`, `:"name"`, `:{?name}` (psql variables), `::` and `:=`, else `:`.
    pub(super) fn colon(&mut self) {
        let b = self.bytes;
        let name_end = |mut k: usize| {
            while b.get(k).copied().is_some_and(is_variable_char) {
                k += 1;
            }
            k
        };
        let start = self.i;
        let reference = match self.at(1) {
            Some(b':' | b'=') => None,
            Some(c) if is_variable_char(c) => Some((start + 1, name_end(start + 1), name_end(start + 1))),
            Some(q @ (b'\'' | b'"')) => {
                let end = name_end(start + 2);
                (end > start + 2 && b.get(end) == Some(&q)).then_some((start + 2, end, end + 1))
            }
            Some(b'{') if self.at(2) == Some(b'?') => {
                let end = name_end(start + 3);
                (end > start + 3 && b.get(end) == Some(&b'}')).then_some((start + 3, end, end + 1))
            }
            _ => None,
        };
        match (reference, self.at(1)) {
            (Some((_, _, token_end)), _) => {
                self.out.variables.push((self.line, self.text[start..token_end].to_string()));
                self.token(token_end - start);
            }
            (None, Some(b':' | b'=')) => self.token(2),
            (None, _) => self.token(1),
        }
    }
}
