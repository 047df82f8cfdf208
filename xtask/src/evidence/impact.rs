//! What a migration did to one relation that existed before it, as the rehearsal records it
//! (measured by the chain's markers, [`crate::runbook::chain::impact`], or predicted from the
//! statement where the file cannot be measured), and how it is said.

use serde::{Deserialize, Serialize};

/// `rows_from` for a count made before the apply.
pub const EXACT: &str = "exact_before_apply";

/// What one file did to one relation that existed before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    pub relation: String,
    /// The strongest lock the file's session held on it, as `pg_locks` names it.
    pub lock: String,
    /// What that lock makes wait: `reads_and_writes`, `writes` or `nothing`.
    pub blocks: String,
    /// Rewritten: a new relfilenode.
    pub rewrite: bool,
    /// Read whole: a sequential scan in the file's transaction.
    pub scan: bool,
    /// The planner's estimate as the file started (`None` when the table was never analyzed).
    pub rows: Option<u64>,
    /// `estimate` (the planner's `reltuples` as the file started) or `exact_before_apply` (counted
    /// exactly, up to the count's bound, in step 3's round trip: the run's first file only, as
    /// nothing ran between the count and it).
    pub rows_from: String,
    /// From the start of the statement that took the lock to the file's commit.
    pub held_ms: u64,
    /// The line of the statement that took the lock.
    pub line: Option<usize>,
    /// Read from the server while the file ran (not predicted).
    pub measured: bool,
    /// The statement's index in the file.
    #[serde(skip)]
    pub statement: usize,
}

impl Impact {
    /// Whether the lock makes others wait while the work grows with the table: a rewrite, a
    /// whole read or an index build (SHARE) under a lock that blocks writes or more.
    pub fn risky(&self) -> bool {
        self.blocks != "nothing" && (self.rewrite || self.scan || self.lock == "ShareLock")
    }

    /// The lock as PostgreSQL's documentation names it: `ACCESS EXCLUSIVE` for `AccessExclusiveLock`.
    pub fn lock_words(&self) -> String {
        let mut words = String::new();
        for (n, c) in self.lock.trim_end_matches("Lock").char_indices() {
            if n > 0 && c.is_uppercase() {
                words.push(' ');
            }
            words.push(c.to_ascii_uppercase());
        }
        words
    }

    /// What the lock makes wait, in words.
    pub fn waits(&self) -> &'static str {
        if self.blocks == "reads_and_writes" {
            "reads and writes wait"
        } else {
            "writes wait"
        }
    }

    /// The rows, as shown: `200000` when counted, `~200000` when estimated.
    pub fn rows_shown(&self) -> Option<String> {
        let exact = self.rows_from == EXACT;
        self.rows.map(|r| if exact { r.to_string() } else { format!("~{r}") })
    }

    /// The rows counted exactly before the apply, where `exact` has them, in place of the estimate.
    pub fn use_exact(impact: &mut [Impact], exact: &std::collections::BTreeMap<String, u64>) {
        for i in impact.iter_mut() {
            if let Some(n) = exact.get(&i.relation) {
                i.rows = Some(*n);
                i.rows_from = EXACT.to_string();
            }
        }
    }

    /// The `lock_risk` message: what holds which lock on what, for how long, and what waits.
    pub fn message(&self, statement: &str) -> String {
        let lock = self.lock_words();
        let rows = self.rows_shown().map_or("rows not estimated".to_string(), |r| format!("{r} rows"));
        let work = if self.rewrite {
            "rewrites it"
        } else if self.lock == "ShareLock" {
            "builds an index on it"
        } else {
            "reads it whole"
        };
        format!(
            "{statement} holds {lock} on {} ({rows}) for {} ms while it {work}: {}",
            self.relation,
            self.held_ms,
            self.waits()
        )
    }

    /// The safe form for what the statement does.
    pub fn hint(&self, statement_upper: &str) -> &'static str {
        if self.lock == "ShareLock" {
            "CREATE INDEX CONCURRENTLY, in a migration of its own"
        } else if statement_upper.contains(" TYPE ") {
            "add a new column of the new type, backfill it in batches, switch to it, then drop the old one"
        } else if statement_upper.contains("DEFAULT") || statement_upper.contains("STORED") {
            "add the column nullable without a default, SET DEFAULT for new rows, then backfill in batches"
        } else if statement_upper.contains("SET NOT NULL") {
            "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later migration, then SET NOT NULL"
        } else if statement_upper.contains("FOREIGN KEY")
            || statement_upper.contains("REFERENCES")
            || statement_upper.contains("CHECK")
        {
            "add the constraint NOT VALID, then VALIDATE CONSTRAINT in a later migration"
        } else if statement_upper.contains("REFRESH") {
            "REFRESH MATERIALIZED VIEW CONCURRENTLY (with a unique index on the view)"
        } else if statement_upper.contains("UNIQUE") || statement_upper.contains("PRIMARY KEY") {
            "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX"
        } else {
            "do the work in small batches, or in a form that takes a weaker lock"
        }
    }
}
