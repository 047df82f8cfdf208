//! The chain's text: each file's statements with a marker query on a line of its own before
//! each, the tool's lines around them, and per line where it comes from and whether psql sends it,
//! to turn the server's `LINE n` back into the file's.

use super::Link;

/// Where a line of the chain comes from.
#[derive(Clone, Copy, Debug)]
pub(super) enum Origin {
    /// A line (or the rest of a line) of file `.0`.
    File(usize),
    /// A line of the tool's: markers, the transaction, the history row.
    Tool,
}

pub(super) struct Chain {
    pub text: String,
    pub alias: String,
    /// Per line of `text`: where it comes from, and whether psql sends it (it skips empty lines
    /// outside quotes and comments).
    origins: Vec<Origin>,
    kept: Vec<bool>,
    /// Per file, per statement: the chain line of its first word (0-based) and its last line in
    /// the file.
    pub statements: Vec<Vec<(usize, usize)>>,
}

impl Chain {
    pub fn new(links: &[Link], sets: &[String]) -> Chain {
        let alias = format!("rehearsal_mark_{}", &links[0].file.sha256[..12]);
        let mut b = Builder { text: String::new(), origins: vec![Origin::Tool], quoted_start: vec![false] };
        let mark = |value: &str| format!("select '{alias}:{value}' as {alias}\\; ");
        let clock = |i: usize, what: &str| {
            format!("select '{alias}:{i}:{what}:' || (extract(epoch from clock_timestamp()) * 1000)::bigint as {alias}")
        };
        let mut statements = Vec::new();
        for (i, link) in links.iter().enumerate() {
            let script = &link.file.script;
            let quoted = script.quoted_line_starts();
            let quoted_start = |line: usize| quoted.get(line - 1).copied().unwrap_or(false);
            if i > 0 {
                b.newline(Origin::Tool, false);
            }
            b.tool(&format!("{}\\; ", clock(i, "s")));
            if link.transaction {
                b.tool("begin\\; ");
            }
            let mut line = 1;
            let mut at = 0;
            let mut firsts = Vec::new();
            for (k, s) in script.statements.iter().enumerate() {
                // The text before the statement: comments, blanks, and empty statements (a bare
                // `;` would end the query string there) made blanks.
                if k == 0 {
                    b.newline(Origin::File(i), quoted_start(line));
                }
                line = b.file(i, line, &script.text[at..s.code].replace(';', " "), &quoted_start);
                // The marker on a line of its own, the statement from its first word on a new line.
                b.newline(Origin::Tool, false);
                // A notice first: psql prints it as the statement starts (a result is printed only
                // once the next is in), which is what the in-flight line names.
                b.tool(&format!("do $rehearsal$ begin raise notice '{alias}:{i}:{k}:go'; end $rehearsal$\\; "));
                b.tool(&mark(&format!("{i}:{k}")));
                b.newline(Origin::File(i), false);
                firsts.push((b.origins.len() - 1, s.end_line));
                line = b.file(i, line, script.tight(s), &quoted_start);
                b.tool("\\;");
                line = b.file(i, line, &script.text[s.code_end..s.end], &quoted_start);
                at = if s.terminated { s.end + 1 } else { s.end };
            }
            if script.statements.is_empty() {
                b.newline(Origin::File(i), quoted_start(line));
            }
            b.file(i, line, &script.text[at..].replace(';', " "), &quoted_start);
            b.newline(Origin::Tool, false);
            if let Some(record) = &link.record {
                b.tool(&format!("with h as ({record}) select '{alias}:{i}:h:' || count(*) as {alias} from h\\; "));
            }
            if link.transaction {
                b.tool("commit\\; reset all\\; reset role\\; reset session authorization\\; ");
                for set in sets {
                    b.tool(&format!("{set}\\; "));
                }
            }
            b.tool(&clock(i, "e"));
            b.tool(if i + 1 == links.len() { ";\n" } else { "\\;" });
            statements.push(firsts);
        }
        let kept = b
            .text
            .split('\n')
            .zip(&b.quoted_start)
            .map(|(text, quoted)| !text.is_empty() || *quoted)
            .chain(std::iter::repeat(true))
            .take(b.origins.len())
            .collect();
        Chain { text: b.text, alias, origins: b.origins, kept, statements }
    }

    /// The file, statement and `LINE n` (as psql would print it for that statement alone) of the
    /// server's `LINE n` in the whole string.
    pub fn locate(&self, n: usize) -> Option<(usize, usize, usize)> {
        let line = (0..self.kept.len()).filter(|l| self.kept[*l]).nth(n.checked_sub(1)?)?;
        let Origin::File(file) = self.origins[line] else { return None };
        let k = self.statements[file].iter().rposition(|(first, _)| *first <= line)?;
        let first = self.statements[file][k].0;
        let in_statement = (first..=line).filter(|l| self.kept[*l]).count();
        Some((file, k, in_statement))
    }
}

/// The chain's text and, per line, its origin and whether it starts inside a quote.
struct Builder {
    text: String,
    origins: Vec<Origin>,
    quoted_start: Vec<bool>,
}

impl Builder {
    fn tool(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn newline(&mut self, origin: Origin, quoted: bool) {
        self.text.push('\n');
        self.origins.push(origin);
        self.quoted_start.push(quoted);
    }

    /// Text of file `i` from its line `line`; returns the line it ends on.
    fn file(&mut self, i: usize, mut line: usize, text: &str, quoted_start: &dyn Fn(usize) -> bool) -> usize {
        let mut parts = text.split('\n');
        self.text.push_str(parts.next().unwrap_or_default());
        for part in parts {
            line += 1;
            self.newline(Origin::File(i), quoted_start(line));
            self.text.push_str(part);
        }
        line
    }
}
