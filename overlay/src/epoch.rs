//! `SOURCE_DATE_EPOCH`, the reproducible-builds.org convention for a fixed build time.

/// `SOURCE_DATE_EPOCH` is set but is not a plain count of seconds.
#[derive(Debug, thiserror::Error)]
#[error("SOURCE_DATE_EPOCH={value:?} is not a number of seconds since 1970 (expected digits only)")]
pub struct EpochError {
    /// The offending value.
    pub value: String,
}

/// The build time from `SOURCE_DATE_EPOCH`, if set and non-empty.
pub fn source_date_epoch() -> Result<Option<u64>, EpochError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse::<u64>().map(Some).map_err(|_| EpochError { value: v }),
        Err(_) => Ok(None),
    }
}
