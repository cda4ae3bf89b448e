//! Durations as operators type them (`30d`, `87600h`, `1y`) and as kubeadm prints residual time.

use std::time::Duration;

/// Parses `30d`, `87600h`, `1y 2d`, `90m` … (humantime's syntax; a year is 365.25 days).
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("expected a duration such as 30d, 87600h or 1y, found `{text}` ({e})"))
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

/// kubeadm's short residual time (`ShortHumanDuration` in k8s.io/apimachinery): `<invalid>` once
/// past, then seconds, minutes, hours below 48h, days below two years, years after that.
pub fn short_human(seconds: i64) -> String {
    if seconds < 0 {
        return "<invalid>".to_string();
    }
    let minutes = seconds / 60;
    let hours = minutes / 60;
    if seconds < 60 {
        format!("{seconds}s")
    } else if minutes < 60 {
        format!("{minutes}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operator_durations() {
        assert_eq!(parse("30d").unwrap(), Duration::from_secs(30 * 86400));
        assert_eq!(parse("87600h").unwrap(), Duration::from_secs(87600 * 3600));
        assert!(parse("soon").unwrap_err().contains("found `soon`"));
    }

    #[test]
    fn short_human_matches_kubeadm() {
        assert_eq!(short_human(-1), "<invalid>");
        assert_eq!(short_human(59), "59s");
        assert_eq!(short_human(3599), "59m");
        assert_eq!(short_human(47 * 3600), "47h");
        assert_eq!(short_human(364 * 86400), "364d");
        assert_eq!(short_human(9 * 365 * 86400 + 86400 * 3), "9y");
    }
}
