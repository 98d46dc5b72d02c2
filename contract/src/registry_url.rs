//! A registry's address as the site spec, the agent and the checking
//! commands take it: `https://host[:port]` (TLS) or `http://host[:port]`
//! (plain HTTP), nothing else. One parser, so a URL the spec accepts is one
//! the agent and `boot-test` accept too.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryUrl {
    pub tls: bool,
    /// Host name or IP address, without brackets.
    pub host: String,
    /// As written; `None` means the scheme's default.
    pub port: Option<u16>,
}

/// Why a string is not a registry URL. The texts complete a sentence that
/// starts with the URL (`harbor.url "x" must start with ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryUrlError {
    #[error("must start with https:// or http://")]
    Scheme,
    #[error("must not carry credentials (give them as a username and a password file)")]
    Credentials,
    #[error("must not have a path, query or fragment (the project is set on its own)")]
    Path,
    #[error("has an unclosed [")]
    UnclosedBracket,
    #[error("has brackets around something that is not an IPv6 address")]
    NotIpv6,
    #[error("has something after the ] that is not a :port")]
    AfterBracket,
    #[error("is an IPv6 address without brackets: write it as [address]:port")]
    BareIpv6,
    #[error("has an invalid port")]
    Port,
    #[error("has no valid host")]
    Host,
}

impl RegistryUrl {
    pub fn parse(s: &str) -> Result<RegistryUrl, RegistryUrlError> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(RegistryUrlError::Scheme);
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(RegistryUrlError::Credentials);
        }
        if rest.contains(['/', '?', '#']) {
            return Err(RegistryUrlError::Path);
        }
        let (host, port) = split_host_port(rest)?;
        let port = parse_port(port)?;
        if !rest.starts_with('[') && !is_host_name(host) {
            return Err(RegistryUrlError::Host);
        }
        // Host names compare case-insensitively; one spelling names one registry.
        Ok(RegistryUrl { tls, host: host.to_ascii_lowercase(), port })
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// `host[:port]` as an image reference names the registry
    /// (`127.0.0.1:30003`, `[fe80::1]:5000`, `harbor.local`).
    pub fn authority(&self) -> String {
        let host = self.bracketed_host();
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// `host:port` with the scheme's default port filled in: one name for
    /// one registry however its URL was written (the agent's journal is named
    /// for it).
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.bracketed_host(), self.port_or_default())
    }

    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.tls { 443 } else { 80 })
    }

    fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for RegistryUrl {
    /// `https://host[:port]`, without a trailing slash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.authority())
    }
}

impl std::str::FromStr for RegistryUrl {
    type Err = RegistryUrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegistryUrl::parse(s)
    }
}

/// The one name of a registry host as image references write it: docker's
/// aliases of Docker Hub all mean `docker.io`; hosts compare
/// case-insensitively.
pub fn canonical_host(host: &str) -> String {
    let h = host.to_ascii_lowercase();
    match h.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".into(),
        _ => h,
    }
}

/// Where the registry that image references name `host` answers: Docker
/// Hub's API is `registry-1.docker.io`; `plain_http` is the spec's
/// `insecure` for that host. `https://host[:port]`, no trailing slash.
pub fn upstream_url(host: &str, plain_http: bool) -> String {
    if canonical_host(host) == "docker.io" {
        return "https://registry-1.docker.io".into();
    }
    let scheme = if plain_http { "http" } else { "https" };
    format!("{scheme}://{host}")
}

/// Split `host[:port]`: an IPv6 address must be in brackets (`[fe80::1]:5000`),
/// so that its colons are never taken for a port separator.
pub fn split_host_port(s: &str) -> Result<(&str, Option<&str>), RegistryUrlError> {
    if let Some(after) = s.strip_prefix('[') {
        let (ip, tail) = after.split_once(']').ok_or(RegistryUrlError::UnclosedBracket)?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(RegistryUrlError::NotIpv6);
        }
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or(RegistryUrlError::AfterBracket)?),
        };
        return Ok((ip, port));
    }
    match s.split_once(':') {
        Some((_, p)) if p.contains(':') => Err(RegistryUrlError::BareIpv6),
        Some((h, p)) => Ok((h, Some(p))),
        None => Ok((s, None)),
    }
}

/// A port: 1 to 65535.
pub fn parse_port(p: Option<&str>) -> Result<Option<u16>, RegistryUrlError> {
    p.map(|p| {
        let digits = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| p.parse::<u16>().ok()).flatten().filter(|p| *p != 0).ok_or(RegistryUrlError::Port)
    })
    .transpose()
}

/// Letters, digits, dots and dashes: a DNS name or an IPv4 address.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_hosts() {
        assert_eq!(canonical_host("Index.Docker.IO"), "docker.io");
        assert_eq!(canonical_host("Reg.Example:5000"), "reg.example:5000");
        assert_eq!(upstream_url("docker.io", false), "https://registry-1.docker.io");
        assert_eq!(upstream_url("registry-1.docker.io", true), "https://registry-1.docker.io");
        assert_eq!(upstream_url("127.0.0.1:5000", true), "http://127.0.0.1:5000");
        assert_eq!(upstream_url("ghcr.io", false), "https://ghcr.io");
    }

    #[test]
    fn good_urls() {
        let u = RegistryUrl::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!((u.tls, u.authority(), u.host_port()), (false, "127.0.0.1:5000".into(), "127.0.0.1:5000".into()));
        let u = RegistryUrl::parse("https://reg.local/").unwrap();
        assert_eq!(
            (u.authority(), u.host_port(), u.to_string()),
            ("reg.local".into(), "reg.local:443".into(), "https://reg.local".into())
        );
        let u = RegistryUrl::parse("https://[fe80::1]:30003").unwrap();
        assert_eq!((u.host.as_str(), u.authority()), ("fe80::1", "[fe80::1]:30003".into()));
        assert_eq!(u.to_string(), "https://[fe80::1]:30003");
        assert_eq!("http://h".parse::<RegistryUrl>().unwrap().host_port(), "h:80");
        assert_eq!(RegistryUrl::parse("https://Harbor.Local:30003").unwrap().authority(), "harbor.local:30003");
    }

    #[test]
    fn bad_urls_say_why() {
        use RegistryUrlError::*;
        for (bad, why) in [
            ("ftp://x", Scheme),
            ("127.0.0.1:5000", Scheme),
            ("https://u:p@x", Credentials),
            ("https://x/v2/", Path),
            ("https://x?a=b", Path),
            ("https://x#f", Path),
            ("https://[fe80::1", UnclosedBracket),
            ("https://[x]:1", NotIpv6),
            ("https://[::1]x", AfterBracket),
            ("https://fe80::1", BareIpv6),
            ("https://x:0", Port),
            ("https://x:65536", Port),
            ("https://x:+80", Port),
            ("https://x:", Port),
            ("https://", Host),
            ("https://a_b", Host),
        ] {
            assert_eq!(RegistryUrl::parse(bad), Err(why), "{bad}");
        }
    }
}
