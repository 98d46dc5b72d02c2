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

/// Harbor keeps a repository's whole name (`spectro-images/<host>/<path>`,
/// the agent's mapping) in a varchar(255) (goharbor/harbor
/// `make/migrations/postgresql/0001_initial_schema.up.sql`): longer names
/// fail only at push time, on the node.
pub const HARBOR_MAX_REPOSITORY_NAME: usize = 255;

/// Refuse an image whose repository in the site Harbor would not fit.
pub(super) fn check_harbor_name(project: &str, image: &edgeiso_bundle::ImageRef) -> Result<(), String> {
    let target = edgeiso_bundle::harbor_target(project, image).repository;
    if target.len() > HARBOR_MAX_REPOSITORY_NAME {
        return Err(format!(
            "`{image}` would be stored in Harbor as `{target}`, {} characters; Harbor takes at most {HARBOR_MAX_REPOSITORY_NAME}",
            target.len()
        ));
    }
    Ok(())
}

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

/// The prefix length a mask means: a prefix length for the address's family
/// (IPv4 0-32, IPv6 0-128), or for IPv4 a dotted netmask whose one-bits are
/// contiguous (`255.255.254.0` is 23). `None` for anything else.
pub(super) fn mask_prefix_len(m: &str, ip: IpAddr) -> Option<u8> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if m.bytes().all(|b| b.is_ascii_digit()) {
        return m.parse::<u8>().ok().filter(|n| *n <= max);
    }
    let bits = u32::from(m.parse::<std::net::Ipv4Addr>().ok().filter(|_| ip.is_ipv4())?);
    (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(bits.leading_ones() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        let v4: IpAddr = "10.0.0.5".parse().unwrap();
        let v6: IpAddr = "fd00::5".parse().unwrap();
        assert_eq!(mask_prefix_len("24", v4), Some(24));
        assert_eq!(mask_prefix_len("255.255.254.0", v4), Some(23));
        assert_eq!(mask_prefix_len("0.0.0.0", v4), Some(0));
        assert_eq!(mask_prefix_len("255.0.255.0", v4), None);
        assert_eq!(mask_prefix_len("33", v4), None);
        assert_eq!(mask_prefix_len("64", v6), Some(64));
        assert_eq!(mask_prefix_len("255.255.255.0", v6), None);
    }

    #[test]
    fn hosts() {
        assert!(check_host("127.0.0.1:5000").is_ok());
        assert!(check_host("docker.io").is_ok());
        assert!(check_host("h:0").is_err());
        assert!(check_host("h/x").is_err());
        assert!(check_host("h:port").is_err());
    }
}
