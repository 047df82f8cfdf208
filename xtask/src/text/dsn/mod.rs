//! Reading a DSN exactly as libpq does, never rewriting it: a `postgres[ql]://` URI (percent
//! escapes, `[v6]` hosts, several `host:port` pairs, query parameters) or a keyword/value string
//! (`key = value`, single-quoted values with `\'` and `\\` escapes, backslash escapes in bare
//! values). Each parameter keeps its byte span in the string, so the one change the tool makes
//! for a child, cutting the password out of the argv (it goes in that child's `PGPASSWORD`
//! instead), removes exactly those bytes and nothing else.

use std::ops::Range;

mod uri;

use uri::parse_uri;

/// A parsed DSN: the string as given and its parameters in libpq's keyword terms.
#[derive(Clone, Debug)]
pub struct Dsn {
    raw: String,
    params: Vec<Param>,
}

#[derive(Clone, Debug, PartialEq)]
struct Param {
    key: String,
    value: String,
    /// Bytes of `raw` that carry this parameter (for the password: what to cut).
    span: Range<usize>,
}

impl Dsn {
    pub fn parse(raw: &str) -> Result<Dsn, String> {
        let params = if let Some(rest) = raw.strip_prefix("postgresql://").or_else(|| raw.strip_prefix("postgres://")) {
            parse_uri(raw, raw.len() - rest.len())?
        } else if raw.contains('=') {
            parse_keywords(raw)?
        } else {
            return Err("not a postgres:// URL or a key=value connection string".into());
        };
        Ok(Dsn { raw: raw.to_string(), params })
    }

    /// The DSN exactly as given.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The last value given for `key` (libpq: a later setting overrides an earlier one).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.iter().rev().find(|p| p.key == key).map(|p| p.value.as_str())
    }

    /// Every host (`host=a,b` or `postgres://a,b/`); empty when none is given.
    pub fn hosts(&self) -> Vec<String> {
        self.get("host").map(|h| h.split(',').map(str::to_string).collect()).unwrap_or_default()
    }

    /// The port of the first host (5432 when none is given).
    pub fn port(&self) -> Result<u16, String> {
        match self.get("port").and_then(|p| p.split(',').next()).filter(|p| !p.is_empty()) {
            None => Ok(5432),
            Some(p) => p.parse().map_err(|_| format!("port `{p}` is not a number")),
        }
    }

    pub fn user(&self) -> Option<&str> {
        self.get("user")
    }

    /// The database: `dbname`, else the user's name, as libpq defaults it.
    pub fn database(&self) -> String {
        self.get("dbname").or(self.user()).unwrap_or("postgres").to_string()
    }

    /// The effective `sslmode` (`ssl=true` and `requiressl=1` mean `require`).
    pub fn sslmode(&self) -> Option<String> {
        let mut mode = None;
        for p in &self.params {
            match p.key.as_str() {
                "sslmode" => mode = Some(p.value.clone()),
                "requiressl" if p.value == "1" => mode = Some("require".into()),
                _ => {}
            }
        }
        mode
    }

    pub fn password(&self) -> Option<&str> {
        self.get("password").filter(|p| !p.is_empty())
    }

    /// Every Supabase project ref the DSN names: the pooler user `postgres.<ref>`, the direct host
    /// `db.<ref>.supabase.co`, and Supavisor's `options=reference=<ref>`.
    pub fn project_refs(&self) -> Vec<String> {
        let mut refs = Vec::new();
        if let Some(r) = self.user().and_then(|u| u.strip_prefix("postgres.")).filter(|r| !r.is_empty()) {
            refs.push(r.to_string());
        }
        for host in self.hosts() {
            if let Some(r) = host.strip_prefix("db.").and_then(|h| h.strip_suffix(".supabase.co")) {
                if !r.is_empty() && !r.contains('.') {
                    refs.push(r.to_string());
                }
            }
        }
        for p in self.params.iter().filter(|p| p.key == "options") {
            for word in p.value.split_whitespace() {
                let word = word.trim_start_matches('-');
                let word = word.strip_prefix("c ").unwrap_or(word);
                if let Some(r) = word.strip_prefix("reference=").filter(|r| !r.is_empty()) {
                    refs.push(r.to_string());
                }
            }
        }
        refs.dedup();
        refs
    }

    /// The DSN with every password parameter cut out (the bytes that carry it, nothing else).
    pub fn without_password(&self) -> String {
        let mut cuts: Vec<Range<usize>> =
            self.params.iter().filter(|p| p.key == "password").map(|p| p.span.clone()).collect();
        cuts.sort_by_key(|r| r.start);
        let mut out = String::with_capacity(self.raw.len());
        let mut at = 0;
        for cut in cuts {
            if cut.start >= at {
                out.push_str(&self.raw[at..cut.start]);
                at = cut.end;
            }
        }
        out.push_str(&self.raw[at..]);
        out
    }
}

fn parse_keywords(raw: &str) -> Result<Vec<Param>, String> {
    let chars: Vec<(usize, char)> = raw.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(raw.len(), |(o, _)| *o);
    let mut params = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].1.is_whitespace() {
            i += 1;
            continue;
        }
        let pair_start = end_of(i);
        let name_start = i;
        while i < chars.len() && chars[i].1 != '=' && !chars[i].1.is_whitespace() {
            i += 1;
        }
        let name = &raw[end_of(name_start)..end_of(i)];
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        if i >= chars.len() || chars[i].1 != '=' {
            return Err(format!("missing \"=\" after \"{name}\" in the connection string"));
        }
        i += 1;
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i].1 == '\'' {
            i += 1;
            loop {
                let Some(&(_, c)) = chars.get(i) else {
                    return Err("unterminated quoted string in the connection string".into());
                };
                match c {
                    '\\' => {
                        i += 1;
                        if let Some(&(_, c)) = chars.get(i) {
                            value.push(c);
                            i += 1;
                        }
                    }
                    '\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].1.is_whitespace() {
                if chars[i].1 == '\\' {
                    i += 1;
                    if let Some(&(_, c)) = chars.get(i) {
                        value.push(c);
                    }
                } else {
                    value.push(chars[i].1);
                }
                i += 1;
            }
        }
        params.push(Param { key: name.to_string(), value, span: pair_start..end_of(i) });
    }
    Ok(params)
}

/// libpq's percent-decoding: `%XX` only (a bad escape or `%00` is an error); `+` stays `+`.
fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(hi), Some(lo)) if hi * 16 + lo != 0 => out.push((hi * 16 + lo) as u8),
                (Some(_), Some(_)) => return Err(format!("forbidden value %00 in percent-encoded value: {s}")),
                _ => return Err(format!("invalid percent-encoded token: {s}")),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("a percent-encoded value is not UTF-8: {s}"))
}

#[cfg(test)]
mod tests {
    use super::Dsn;

    #[test]
    fn a_pooler_url_with_an_escaped_password() {
        let d = Dsn::parse(
            "postgresql://postgres.abcd:p%40ss@aws-0-us-east-1.pooler.supabase.com:5432/postgres?sslmode=require",
        )
        .unwrap();
        assert_eq!(d.hosts(), vec!["aws-0-us-east-1.pooler.supabase.com"]);
        assert_eq!((d.port().unwrap(), d.user(), d.database().as_str()), (5432, Some("postgres.abcd"), "postgres"));
        assert_eq!((d.sslmode().as_deref(), d.password()), (Some("require"), Some("p@ss")));
        assert_eq!(d.project_refs(), vec!["abcd"]);
        assert_eq!(
            d.without_password(),
            "postgresql://postgres.abcd@aws-0-us-east-1.pooler.supabase.com:5432/postgres?sslmode=require"
        );
    }

    #[test]
    fn ipv6_literals_several_hosts_and_query_parameters() {
        let d =
            Dsn::parse("postgres://u@[2600:1f18::1]:6543,h2:5433/db?host=override&password=x%20y&sslmode=verify-full")
                .unwrap();
        assert_eq!(d.hosts(), vec!["override"], "a later host= overrides the netloc");
        assert_eq!(d.password(), Some("x y"));
        assert_eq!(
            d.without_password(),
            "postgres://u@[2600:1f18::1]:6543,h2:5433/db?host=override&sslmode=verify-full"
        );
        let d = Dsn::parse("postgres://u@[2600:1f18::1]:6543/db?password=a&x=1").unwrap();
        assert_eq!(d.hosts(), vec!["2600:1f18::1"]);
        assert_eq!(d.without_password(), "postgres://u@[2600:1f18::1]:6543/db?x=1");
    }

    #[test]
    fn keyword_strings_with_quotes_and_escapes_read_as_libpq_reads_them() {
        let d = Dsn::parse(
            "host=db.xyz.supabase.co port = 5432 user=postgres password='a b\\'c' dbname=postgres sslmode=require",
        )
        .unwrap();
        assert_eq!(d.password(), Some("a b'c"));
        assert_eq!(d.project_refs(), vec!["xyz"]);
        assert_eq!(
            d.without_password(),
            "host=db.xyz.supabase.co port = 5432 user=postgres  dbname=postgres sslmode=require"
        );
        // A quoted value cannot smuggle a second host or sslmode past the reader.
        let d =
            Dsn::parse("host=127.0.0.1 sslmode=disable application_name='x sslmode=require host=localhost'").unwrap();
        assert_eq!((d.hosts(), d.sslmode()), (vec!["127.0.0.1".to_string()], Some("disable".to_string())));
        assert_eq!(d.get("application_name"), Some("x sslmode=require host=localhost"));
        assert!(Dsn::parse("host='open").unwrap_err().contains("unterminated"));
        assert!(Dsn::parse("host").is_err());
    }

    #[test]
    fn every_project_ref_is_found() {
        let d = Dsn::parse("postgresql://postgres:pw@aws-0.pooler.supabase.com:6543/postgres?options=reference%3Dprodref1&sslmode=require").unwrap();
        assert_eq!(d.project_refs(), vec!["prodref1"]);
    }
}
