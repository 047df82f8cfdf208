//! A migration split as the Supabase CLI splits it for `schema_migrations.statements`
//! (`pkg/parser`: `SplitAndTrim`, a state machine fed one byte at a time), whatever psql would
//! do: the history row the tool writes is the one `supabase db push` would have written, so the
//! CLI (and a drift check) reads it back as its own.
//!
//! Its quirks are kept on purpose: `'` and `"` quotes know no backslash escapes, a dollar tag is
//! Unicode letters, digits and `_` (decoded at each byte: a character of more than one byte ends
//! a tag), `/*/` closes a comment, a `)` closes every open parenthesis, and a BEGIN ATOMIC body
//! ends at the first `end` in any word. Each piece loses its trailing `;` and outer whitespace;
//! empty pieces are dropped.

/// The CLI's states (`ReadyState`, `CommentState`, ...).
#[derive(Clone, Debug)]
enum State {
    Ready,
    /// One `-` seen.
    Comment,
    /// One `/` seen, or inside a block comment of this depth.
    Block(u32),
    /// Inside `'` or `"`; `true` once the quote may have closed (a doubled one reopens it).
    Quote(u8, bool),
    /// Inside a dollar quote or a line comment, up to this delimiter.
    Dollar(Vec<u8>),
    /// A `$` at this offset of the piece, and the tag after it.
    Tag(usize),
    /// After a backslash: the next character is skipped.
    Escape,
    /// Inside parentheses (`)`) or a BEGIN ATOMIC body (`END`): the state inside, the delimiter.
    Atomic(Box<State>, &'static [u8]),
}

/// `statements` as the CLI would store them for `text` (the file's bytes as read, any byte order
/// mark included).
pub fn supabase_split(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut state = State::Ready;
    let mut p = 0;
    while p < bytes.len() {
        // Go's DecodeRune at each byte: a whole character at its first byte, U+FFFD after it.
        let (r, width) = if text.is_char_boundary(p) {
            let c = text[p..].chars().next().unwrap_or('\u{fffd}');
            (c, c.len_utf8())
        } else {
            ('\u{fffd}', 1)
        };
        let data = &bytes[start..p + width];
        match next(state, r, data) {
            Some(s) => state = s,
            None => {
                push(&mut pieces, &text[start..p + width]);
                start = p + width;
                state = State::Ready;
                p = start;
                continue;
            }
        }
        p += 1;
    }
    if start < bytes.len() {
        push(&mut pieces, &text[start..]);
    }
    pieces
}

fn push(pieces: &mut Vec<String>, piece: &str) {
    let trimmed = piece.trim_end_matches(';').trim_matches(is_go_space);
    if !trimmed.is_empty() {
        pieces.push(trimmed.to_string());
    }
}

/// Go's `unicode.IsSpace`.
fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}')
        || (c > '\u{ff}' && c.is_whitespace())
}

fn ends_with_fold(data: &[u8], tail: &[u8]) -> bool {
    data.len() >= tail.len() && data[data.len() - tail.len()..].eq_ignore_ascii_case(tail)
}

/// One step; `None` ends the piece (a `;` in the ready state).
fn next(state: State, r: char, data: &[u8]) -> Option<State> {
    Some(match state {
        State::Ready => return ready(r, data),
        State::Comment if r == '-' => State::Dollar(b"\n".to_vec()),
        State::Comment => return ready(r, data),
        State::Block(depth) => {
            let window = &data[data.len().saturating_sub(2)..];
            if window == b"/*" {
                State::Block(depth + 1)
            } else if depth == 0 {
                return ready(r, data);
            } else if window == b"*/" {
                if depth == 1 {
                    State::Ready
                } else {
                    State::Block(depth - 1)
                }
            } else {
                State::Block(depth)
            }
        }
        State::Quote(q, true) if r as u32 == u32::from(q) => State::Quote(q, false),
        State::Quote(_, true) => return ready(r, data),
        State::Quote(q, false) => State::Quote(q, r as u32 == u32::from(q)),
        State::Dollar(delimiter) => {
            if data.ends_with(&delimiter) {
                State::Ready
            } else {
                State::Dollar(delimiter)
            }
        }
        State::Tag(offset) if r == '$' => State::Dollar(data[offset..].to_vec()),
        State::Tag(offset) if r.is_alphabetic() || r.is_numeric() || r == '_' => State::Tag(offset),
        State::Tag(_) => return ready(r, data),
        State::Escape => State::Ready,
        State::Atomic(inner, delimiter) => {
            let inner = match next((*inner).clone(), r, data) {
                Some(s) => s,
                None => *inner,
            };
            if matches!(inner, State::Ready) && ends_with_fold(data, delimiter) {
                State::Ready
            } else {
                State::Atomic(Box::new(inner), delimiter)
            }
        }
    })
}

fn ready(r: char, data: &[u8]) -> Option<State> {
    Some(match r {
        '$' => State::Tag(data.len() - 1),
        '\'' | '"' => State::Quote(r as u8, false),
        '-' => State::Comment,
        '/' => State::Block(0),
        '\\' => State::Escape,
        ';' => return None,
        '(' => State::Atomic(Box::new(State::Ready), b")"),
        'c' | 'C' => {
            let at = data.len().checked_sub(6);
            match at {
                Some(at)
                    if at > 0 && data[at..].eq_ignore_ascii_case(b"ATOMIC") && is_go_space(data[at - 1] as char) =>
                {
                    State::Atomic(Box::new(State::Ready), b"END")
                }
                _ => State::Ready,
            }
        }
        _ => State::Ready,
    })
}

#[cfg(test)]
mod tests {
    use super::supabase_split;

    #[test]
    fn pieces_keep_comments_and_lose_their_semicolon() {
        assert_eq!(
            supabase_split("-- lead\ncreate table a (x int);\n\n;select 'a;b' ; -- tail\n"),
            ["-- lead\ncreate table a (x int)", "select 'a;b'", "-- tail"]
        );
    }

    #[test]
    fn the_cli_quirks_are_its_own() {
        // A tag of a symbol is no tag for the CLI: it splits inside what psql reads as a quote.
        assert_eq!(supabase_split("select $★$a;b$★$;"), ["select $★$a", "b$★$"]);
        // No backslash escapes in quotes: `E'\''` reads as a doubled quote, still open.
        assert_eq!(supabase_split("select E'\\''; select 1;"), ["select E'\\''; select 1"]);
        // A BEGIN ATOMIC body ends at the first `end`, even inside a word.
        assert_eq!(
            supabase_split("create function f() returns int language sql begin atomic select 1; end; select 2;"),
            ["create function f() returns int language sql begin atomic select 1; end", "select 2"]
        );
        assert_eq!(supabase_split("select $$a;$$; select ((1);2);"), ["select $$a;$$", "select ((1)", "2)"]);
    }
}
