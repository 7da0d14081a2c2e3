//! Durations written by people (config, CLI, labels, control API): parsed one
//! way and bounded, so no input can overflow the clock arithmetic downstream
//! (`Instant + Duration` panics on overflow; `--for 500000000000y` did).

use std::time::Duration;

/// The longest duration medic accepts anywhere: ten years (`"10y"`), far past
/// any sensible pause or timeout and far below what an `Instant` can hold.
pub const MAX: Duration = Duration::from_secs(10 * 31_557_600);

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a duration at all.
    #[error("invalid duration \"{text}\": {reason} (write e.g. \"10s\", \"5m\", \"250ms\")")]
    Invalid {
        /// What was written.
        text: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A duration, but longer than [`MAX`].
    #[error("duration \"{text}\" is too long: medic accepts at most 10y")]
    TooLong {
        /// What was written.
        text: String,
    },
}

/// Parses "10s", "5m", "1h30m", "250ms" (humantime's syntax), at most [`MAX`].
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let duration = humantime::parse_duration(text.trim()).map_err(|e| DurationError::Invalid {
        text: text.to_owned(),
        reason: e.to_string(),
    })?;
    if duration > MAX {
        return Err(DurationError::TooLong {
            text: text.to_owned(),
        });
    }
    Ok(duration)
}

/// A whole number of seconds (the control API's `for_secs` and timeouts), at most [`MAX`].
pub fn from_secs(secs: u64) -> Result<Duration, DurationError> {
    let duration = Duration::from_secs(secs);
    if duration > MAX {
        return Err(DurationError::TooLong {
            text: format!("{secs}s"),
        });
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(parse("10y"), Ok(MAX));
        assert_eq!(parse(" 250ms "), Ok(Duration::from_millis(250)));
        assert_eq!(
            parse("500000000000y").unwrap_err().to_string(),
            "duration \"500000000000y\" is too long: medic accepts at most 10y"
        );
        assert!(matches!(
            parse("99999999999999999999999y"),
            Err(DurationError::Invalid { .. })
        ));
        assert!(matches!(
            parse("10 parsecs"),
            Err(DurationError::Invalid { .. })
        ));
        assert_eq!(from_secs(1800), Ok(Duration::from_secs(1800)));
        assert_eq!(
            from_secs(u64::MAX).unwrap_err().to_string(),
            format!(
                "duration \"{}s\" is too long: medic accepts at most 10y",
                u64::MAX
            )
        );
    }
}
