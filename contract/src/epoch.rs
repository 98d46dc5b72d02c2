//! `SOURCE_DATE_EPOCH`, the reproducible-builds.org convention for a fixed
//! build time. One reading of it for the bundle's creation time, a generated
//! certificate's validity and the ISO's dates, so one value means the same
//! everywhere (and a malformed one is refused everywhere).

/// `SOURCE_DATE_EPOCH` is set but is not a plain count of seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SOURCE_DATE_EPOCH={value:?} is not a number of seconds since 1970 (expected digits only)")]
pub struct EpochError {
    /// The offending value.
    pub value: String,
}

/// The build time from `SOURCE_DATE_EPOCH`, if set and not blank.
pub fn source_date_epoch() -> Result<Option<u64>, EpochError> {
    parse(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())
}

fn parse(value: Option<&str>) -> Result<Option<u64>, EpochError> {
    match value {
        Some(v) if !v.trim().is_empty() => {
            let t = v.trim();
            if !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(EpochError { value: v.to_owned() });
            }
            t.parse::<u64>().map(Some).map_err(|_| EpochError { value: v.to_owned() })
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_or_nothing() {
        assert_eq!(parse(None), Ok(None));
        assert_eq!(parse(Some("")), Ok(None));
        assert_eq!(parse(Some(" ")), Ok(None));
        assert_eq!(parse(Some("1700000000")), Ok(Some(1_700_000_000)));
        assert_eq!(parse(Some(" 0\n")), Ok(Some(0)));
        for bad in ["-1", "+5", "1.5", "yesterday", "99999999999999999999999"] {
            assert!(parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
