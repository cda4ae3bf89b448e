//! Durations as operators type them (`30d`, `87600h`, `1y`) and as kubeadm prints residual time.

use std::time::Duration;

/// The longest duration accepted: a thousand years. Every duration then fits an `i64` of
/// seconds added to any instant an X.509 certificate can name, with room to spare.
pub const MAX: Duration = Duration::from_secs(1000 * 31_557_600);

/// Parses `30d`, `87600h`, `1y 2d`, `90m` … (humantime's syntax; a year is 365.25 days), at
/// most [`MAX`]: `106751991167301d` or `18446744073709551615s` is refused, never wrapped.
pub fn parse(text: &str) -> Result<Duration, Error> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| Error::Invalid {
        found: text.to_string(),
        why: e.to_string(),
    })?;
    if d > MAX {
        return Err(Error::TooLong(text.to_string()));
    }
    Ok(d)
}

/// Text that is not a duration [`parse`] accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("expected a duration such as 30d, 87600h or 1y, found `{found}` ({why})")]
    Invalid { found: String, why: String },
    #[error("expected a duration of at most 1000y, found `{0}`")]
    TooLong(String),
}

/// RFC 3339 in UTC, or the raw number if it is out of range.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Go's `Jan 02, 2006 15:04 MST` as kubeadm prints EXPIRES, always UTC; the raw number if it is
/// out of range.
pub fn kubeadm_date(unix: i64) -> String {
    let fmt =
        time::macros::format_description!("[month repr:short] [day], [year] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| unix.to_string())
}

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// Residual time as kubeadm prints it (`RESIDUAL TIME`): apimachinery's `ShortHumanDuration`
/// of a number of whole seconds. `<invalid>` from two seconds in the past, `0s` just before,
/// then seconds, minutes, hours below a day, days below 365, whole years of 365 days: `1d` for
/// 30 hours, `1y` for 395 days. Beyond Go's `time.Duration` (about 292 years) it saturates as
/// Go's `Time.Sub` does.
pub fn short_human(seconds: i64) -> String {
    const LIMIT: i64 = i64::MAX / SECOND;
    short_human_nanos(seconds.clamp(-LIMIT, LIMIT) * SECOND)
}

/// Go's `Duration.Seconds()`/`Minutes()`/`Hours()`: whole units plus the remainder as a fraction.
fn go_units(d: i64, unit: i64) -> f64 {
    (d / unit) as f64 + (d % unit) as f64 / unit as f64
}

/// apimachinery's `duration.ShortHumanDuration`, rule for rule, for a Go `time.Duration` (ns).
fn short_human_nanos(d: i64) -> String {
    // Go converts the float to int by truncating toward zero, as `as` does.
    let seconds = go_units(d, SECOND) as i64;
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = go_units(d, MINUTE) as i64;
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = go_units(d, HOUR) as i64;
    if hours < 24 {
        format!("{hours}h")
    } else if hours < 24 * 365 {
        format!("{}d", hours / 24)
    } else {
        format!("{}y", (go_units(d, HOUR) / 24.0 / 365.0) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operator_durations() {
        assert_eq!(parse("30d").unwrap(), Duration::from_secs(30 * 86400));
        assert_eq!(parse("87600h").unwrap(), Duration::from_secs(87600 * 3600));
        assert!(parse("soon")
            .unwrap_err()
            .to_string()
            .contains("found `soon`"));
    }

    const MS: i64 = 1_000_000;

    /// apimachinery's own table (pkg/util/duration/duration_test.go,
    /// TestShortHumanDurationBoundaries), case for case.
    #[test]
    fn short_human_nanos_matches_apimachinery() {
        let day = 24 * HOUR;
        let cases: &[(i64, &str)] = &[
            (-2 * SECOND, "<invalid>"),
            (-2 * SECOND + 1, "0s"),
            (0, "0s"),
            (SECOND - MS, "0s"),
            (SECOND, "1s"),
            (2 * SECOND - MS, "1s"),
            (MINUTE - MS, "59s"),
            (MINUTE, "1m"),
            (2 * MINUTE - MS, "1m"),
            (HOUR - MS, "59m"),
            (HOUR, "1h"),
            (2 * HOUR - MS, "1h"),
            (day - MS, "23h"),
            (day, "1d"),
            (2 * day - MS, "1d"),
            (365 * day - MS, "364d"),
            (365 * day, "1y"),
            (2 * 365 * day - MS, "1y"),
            (2 * 365 * day, "2y"),
        ];
        for &(d, want) in cases {
            assert_eq!(short_human_nanos(d), want, "ShortHumanDuration({d}ns)");
        }
    }

    /// Whole seconds, as kubeadm keeps them; not `HumanDuration` (kubectl's AGE): `1d`, not
    /// `30h`; `1y`, not `395d`.
    #[test]
    fn short_human_is_kubeadms_residual_time() {
        assert_eq!(short_human(-2), "<invalid>");
        assert_eq!(short_human(-1), "0s");
        assert_eq!(short_human(59), "59s");
        assert_eq!(short_human(90), "1m");
        assert_eq!(short_human(3599), "59m");
        assert_eq!(short_human(30 * 3600), "1d");
        assert_eq!(short_human(47 * 3600), "1d");
        assert_eq!(short_human(364 * 86400), "364d");
        assert_eq!(short_human(395 * 86400), "1y");
        assert_eq!(short_human(9 * 365 * 86400 + 86400 * 3), "9y");
        // Go's Time.Sub saturates near 292 years; kubeadm prints what is left of it
        assert_eq!(short_human(i64::MAX), "292y");
        assert_eq!(short_human(i64::MIN), "<invalid>");
    }
}
