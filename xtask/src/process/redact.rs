//! Secrets never reach a file, a log, the terminal or `summary.json`. Every line a child prints,
//! and every command the tool shows, passes through a [`Redactor`] first.

/// Replaces each known secret with its stand-in: the DSN with `$DATABASE_URL`, a password or key
/// with `***`. Longer needles go first, so a DSN is replaced whole before its password is.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    needles: Vec<(String, &'static str)>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// The DSN as given and as children get it (both shown as `$DATABASE_URL`), and the password
    /// inside it, raw and percent-decoded (shown as `***`).
    pub fn with_dsn(mut self, dsn: &str) -> Redactor {
        self.add(dsn, "$DATABASE_URL");
        if let Ok(parsed) = crate::text::dsn::Dsn::parse(dsn) {
            self.add(&parsed.without_password(), "$DATABASE_URL");
            if let Some(password) = parsed.password() {
                self.add(password, "***");
            }
        }
        if let Some(password) = dsn_password(dsn) {
            let decoded = percent_decode(&password);
            self.add(&password, "***");
            self.add(&decoded, "***");
        }
        self
    }

    pub fn with_secret(mut self, secret: &str) -> Redactor {
        self.add(secret, "***");
        self
    }

    fn add(&mut self, needle: &str, stand_in: &'static str) {
        // Very short needles would shred ordinary text; no real password is this short.
        if needle.len() >= 4 && !self.needles.iter().any(|(n, _)| n == needle) {
            self.needles.push((needle.to_string(), stand_in));
            self.needles.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (needle, stand_in) in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), stand_in);
            }
        }
        out
    }
}

/// The password of a `postgres://user:password@host/db` URL, still percent-encoded.
fn dsn_password(dsn: &str) -> Option<String> {
    let rest = dsn.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_string())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dsn_becomes_its_variable_and_its_password_stars() {
        let dsn = "postgresql://postgres.abc:p%40ss%2Fw0rd@aws-0.pooler.supabase.com:5432/postgres?sslmode=require";
        let r = Redactor::new().with_dsn(dsn);
        assert_eq!(r.redact(&format!("psql \"{dsn}\" -c x")), "psql \"$DATABASE_URL\" -c x");
        assert_eq!(r.redact("FATAL: password p@ss/w0rd rejected"), "FATAL: password *** rejected");
        assert_eq!(r.redact("raw p%40ss%2Fw0rd"), "raw ***");
    }

    #[test]
    fn a_dsn_without_password_redacts_only_itself() {
        let r = Redactor::new().with_dsn("postgresql://postgres@127.0.0.1:5432/postgres");
        assert_eq!(r.redact("user postgres"), "user postgres");
    }
}
