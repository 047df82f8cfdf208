//! The data plan's migration globs (`supabase/migrations/2025101109*.sql`) and `config.toml`'s
//! `schema_paths`: `*` (not across `/`), `**` (across `/`), `?`, and literal text, as a shell
//! matches them. Each glob becomes a regex, which matches in
//! time linear in the path whatever the pattern (`*a*a*a*b` backtracks exponentially when matched
//! by naive recursion).

use regex::Regex;

/// A compiled glob.
#[derive(Clone, Debug)]
pub struct Glob {
    pattern: String,
    regex: Regex,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, String> {
        let mut re = String::with_capacity(pattern.len() * 2 + 2);
        re.push('^');
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    // `a/**/b` also matches `a/b`.
                    if chars.peek() == Some(&'/') {
                        chars.next();
                        re.push_str("(?:.*/)?");
                    } else {
                        re.push_str(".*");
                    }
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            }
        }
        re.push('$');
        let regex = Regex::new(&re).map_err(|e| format!("the glob `{pattern}` is too large to match ({e})"))?;
        Ok(Glob { pattern: pattern.to_string(), regex })
    }

    pub fn matches(&self, path: &str) -> bool {
        self.regex.is_match(path)
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn m(pattern: &str, path: &str) -> bool {
        Glob::new(pattern).unwrap().matches(path)
    }

    #[test]
    fn the_runbooks_globs() {
        assert!(m("supabase/migrations/2025101109*.sql", "supabase/migrations/20251011090000_inventory_bundle.sql"));
        assert!(!m("supabase/migrations/2025101109*.sql", "supabase/migrations/20251011140000_knowledge_base.sql"));
        assert!(m("supabase/migrations/20251019004500_x.sql", "supabase/migrations/20251019004500_x.sql"));
        assert!(!m("supabase/*.sql", "supabase/migrations/x.sql"));
        assert!(m("supabase/migrations/2025?01*_[a].sql", "supabase/migrations/2025101_x_[a].sql"));
        assert!(!m("a.sql", "absql"), "a dot is a dot");
    }

    #[test]
    fn many_stars_do_not_backtrack() {
        let pattern = format!("{}b.sql", "*a".repeat(12));
        let path = format!("{}.sql", "a".repeat(60));
        assert!(!m(&pattern, &path));
    }
}
