//! Where a registry says an upload session lives: its `Location` header,
//! joined onto the URL that was asked. The agent sends its credentials to
//! that URL (Basic, or a Bearer token for the registry), so it must stay on
//! the registry's origin: a hostile or misconfigured registry must not be
//! able to send them to another host, port or scheme (an `http://` Location
//! from an `https://` registry would put them on the wire in clear).

use edgeiso_contract::printable::escape;
/// The URL type [`resolve_location`] takes (reqwest's, re-exported for
/// callers without reqwest: the fuzz target).
pub use reqwest::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("bad Location \"{}\": {reason}", escape(.location))]
    Unparseable { location: String, reason: String },
    #[error(
        "Location \"{}\" leaves the registry {origin} (credentials go only to the registry's own scheme, host and port)",
        escape(.location)
    )]
    OtherOrigin { location: String, origin: String },
    #[error("Location \"{}\" carries a user name or password (the agent sends its own credentials only)", escape(.location))]
    UserInfo { location: String },
}

/// `header` resolved against `base` (the URL of the request it answers), if
/// the result has `registry`'s scheme, host and port.
pub fn resolve_location(registry: &Url, base: &Url, header: &str) -> Result<Url, LocationError> {
    let url = base
        .join(header)
        .map_err(|e| LocationError::Unparseable { location: header.to_owned(), reason: e.to_string() })?;
    if url.origin() != registry.origin() {
        return Err(LocationError::OtherOrigin {
            location: header.to_owned(),
            origin: registry.origin().ascii_serialization(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(LocationError::UserInfo { location: header.to_owned() });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn relative_and_same_origin_locations_resolve() {
        let reg = url("https://10.0.0.5:30003/");
        let base = url("https://10.0.0.5:30003/v2/p/app/blobs/uploads/");
        for (loc, want) in [
            ("/v2/p/app/blobs/uploads/u1?_state=x", "https://10.0.0.5:30003/v2/p/app/blobs/uploads/u1?_state=x"),
            ("u2", "https://10.0.0.5:30003/v2/p/app/blobs/uploads/u2"),
            ("https://10.0.0.5:30003/v2/u3", "https://10.0.0.5:30003/v2/u3"),
            ("HTTPS://10.0.0.5:30003/v2/u4", "https://10.0.0.5:30003/v2/u4"),
        ] {
            assert_eq!(resolve_location(&reg, &base, loc).unwrap().as_str(), want, "{loc}");
        }
        // The default port spelled out or not is the same origin.
        let reg = url("https://harbor.local/");
        let base = url("https://harbor.local/v2/x/blobs/uploads/");
        assert!(resolve_location(&reg, &base, "https://harbor.local:443/v2/u").is_ok());
    }

    #[test]
    fn locations_off_the_registrys_origin_are_refused() {
        let reg = url("https://10.0.0.5:30003/");
        let base = url("https://10.0.0.5:30003/v2/p/app/blobs/uploads/");
        for loc in [
            "http://10.0.0.5:30003/v2/u",  // scheme: credentials in clear
            "https://10.0.0.5:30004/v2/u", // port
            "https://evil.example/v2/u",   // host
            "//evil.example/v2/u",         // scheme-relative: another host
            "https://10.0.0.5:30003@evil.example/v2/u",
            "file:///etc/passwd",
        ] {
            let e = resolve_location(&reg, &base, loc).unwrap_err();
            assert!(matches!(e, LocationError::OtherOrigin { .. }), "{loc}: {e}");
            assert!(e.to_string().contains(loc), "names the Location: {e}");
        }
        let e = resolve_location(&reg, &base, "https://x:y@10.0.0.5:30003/v2/u").unwrap_err();
        assert!(matches!(e, LocationError::UserInfo { .. }), "{e}");
    }

    #[test]
    fn what_the_error_prints_of_a_location_is_escaped() {
        let reg = url("http://127.0.0.1:5000/");
        let e = resolve_location(&reg, &reg, "http://evil\u{1b}[31m.example/").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}'), "{e:?}");
        let e = resolve_location(&reg, &reg, "http://[::1\u{1b}]/").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}'), "{e:?}");
    }
}
