//! Small value checks of the spec: names Kubernetes and Harbor accept,
//! registry hosts, platforms, network masks.

use std::net::IpAddr;

use edgeiso_contract::registry_url::{is_host_name, parse_port, split_host_port};

/// RFC 1123 label: what Kubernetes, file names and host names all accept.
pub fn check_dns_label(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 63 {
        return Err("must be 1 to 63 characters");
    }
    if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err("may hold only lower-case letters, digits and `-`");
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

/// RFC 1123 subdomain: what Kubernetes accepts for most object names.
pub fn check_dns_subdomain(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 253 {
        return Err("must be 1 to 253 characters");
    }
    for label in s.split('.') {
        check_dns_label(label).map_err(|_| "must be lower-case letters, digits, `-` and `.`, like a DNS name")?;
    }
    Ok(())
}

pub(super) use edgeiso_contract::agent_config::check_project_name as check_project;

/// `host[:port]`, as an image reference's registry part.
pub(super) fn check_host(h: &str) -> Result<(), String> {
    if h.is_empty() {
        return Err("is empty".into());
    }
    if h.contains('/') {
        return Err("must be a bare host[:port], without a path".into());
    }
    let (name, port) = split_host_port(h).map_err(|e| e.to_string())?;
    parse_port(port).map_err(|e| e.to_string())?;
    if !h.starts_with('[') && !is_host_name(name) {
        return Err("is not a host name or IP address".into());
    }
    Ok(())
}

pub(super) fn is_platform(p: &str) -> bool {
    let parts: Vec<&str> = p.split('/').collect();
    (parts.len() == 2 || parts.len() == 3)
        && parts
            .iter()
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
}

/// A prefix length for the address's family (IPv4 0-32, IPv6 0-128), or for
/// IPv4 a dotted netmask whose one-bits are contiguous (`255.255.254.0`).
pub(super) fn is_mask(m: &str, ip: IpAddr) -> bool {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if m.bytes().all(|b| b.is_ascii_digit()) {
        return m.parse::<u8>().is_ok_and(|n| n <= max);
    }
    ip.is_ipv4()
        && m.parse::<std::net::Ipv4Addr>().is_ok_and(|a| {
            let bits = u32::from(a);
            bits.leading_ones() + bits.trailing_zeros() == 32
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert!(check_host("127.0.0.1:5000").is_ok());
        assert!(check_host("docker.io").is_ok());
        assert!(check_host("h:0").is_err());
        assert!(check_host("h/x").is_err());
        assert!(check_host("h:port").is_err());
    }
}
