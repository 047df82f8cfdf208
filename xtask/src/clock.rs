//! UTC timestamps in the shapes the runbook uses (`date -u +%Y-%m-%d`, `+%Y%m%dT%H%M%SZ`,
//! `+%H%M%S`) and RFC 3339 for `summary.json`. Twenty lines of calendar arithmetic instead of a
//! date crate keep the cold build short.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment in UTC, to the second, with its milliseconds kept for RFC 3339.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl Utc {
    pub fn now() -> Utc {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Utc::from_unix(since.as_secs() as i64, since.subsec_millis())
    }

    pub fn from_unix(secs: i64, millis: u32) -> Utc {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc { year, month, day, hour: rem / 3600, minute: rem / 60 % 60, second: rem % 60, millis }
    }

    /// `2025-10-19`: the day folder of `artifacts/ops/` and the feedback file name.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `20251019T004500Z`: the rehearsal folder's stamp.
    pub fn stamp(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `004500`: the suffix of the connectivity and inventory transcripts.
    pub fn hhmmss(&self) -> String {
        format!("{:02}{:02}{:02}", self.hour, self.minute, self.second)
    }

    /// `2025-10-19T00:45:00.123Z`.
    pub fn rfc3339(&self) -> String {
        format!("{}T{:02}:{:02}:{:02}.{:03}Z", self.date(), self.hour, self.minute, self.second, self.millis)
    }
}

#[cfg(test)]
mod tests {
    use super::Utc;

    #[test]
    fn formats_match_the_runbooks_date_commands() {
        // 2025-10-19T00:45:00Z, the programmatic SEO migration's version.
        let t = Utc::from_unix(1_760_834_700, 7);
        assert_eq!(t.date(), "2025-10-19");
        assert_eq!(t.stamp(), "20251019T004500Z");
        assert_eq!(t.hhmmss(), "004500");
        assert_eq!(t.rfc3339(), "2025-10-19T00:45:00.007Z");
    }

    #[test]
    fn leap_days_and_the_epoch() {
        assert_eq!(Utc::from_unix(0, 0).date(), "1970-01-01");
        assert_eq!(Utc::from_unix(951_782_400, 0).date(), "2000-02-29");
        assert_eq!(Utc::from_unix(1_709_164_800, 0).date(), "2024-02-29");
    }
}
