//! The wall clock, read in one place. Everything else takes `now` as a parameter.

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
