//! Name resolution that works in a static binary with no libc and no `/etc`
//! beyond `resolv.conf`: glibc's `getaddrinfo` would try to `dlopen` NSS
//! modules that an initramfs does not have. IP literals never get here (the
//! HTTP connector handles them); names are looked up in `/etc/hosts` first
//! (`spectro.registry.local` is usually pinned there), then by DNS using the
//! servers in `/etc/resolv.conf`. There is no fallback to public resolvers:
//! the agent runs air-gapped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone)]
pub struct Resolver {
    hosts_file: PathBuf,
    resolv_conf: PathBuf,
    /// Set once a resolver could be built. A failure is not kept: in an
    /// initramfs `/etc/resolv.conf` may appear while the agent waits for
    /// the registry, and the next lookup must see it.
    dns: Arc<OnceLock<TokioResolver>>,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver {
            hosts_file: PathBuf::from("/etc/hosts"),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            dns: Arc::default(),
        }
    }
}

/// A DNS resolver for the servers and options of `resolv_conf`.
fn build_dns(resolv_conf: &Path) -> Result<TokioResolver, String> {
    let why = |e: &dyn std::fmt::Display| format!("no usable {} ({e})", resolv_conf.display());
    let data = std::fs::read(resolv_conf).map_err(|e| why(&e))?;
    let (config, options) = hickory_resolver::system_conf::parse_resolv_conf(data).map_err(|e| why(&e))?;
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    *builder.options_mut() = options;
    builder.build().map_err(|e| why(&e))
}

/// Addresses `/etc/hosts` (in `text`) gives `name`, in file order.
pub fn lookup_hosts(text: &str, name: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let ip: IpAddr = fields.next()?.parse().ok()?;
            fields.any(|h| h.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect()
}

fn hosts_lookup(path: &Path, name: &str) -> Vec<IpAddr> {
    let mut found = std::fs::read_to_string(path).map(|t| lookup_hosts(&t, name)).unwrap_or_default();
    if found.is_empty() && name.eq_ignore_ascii_case("localhost") {
        found = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    }
    found
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let name = name.as_str().to_owned();
            let from_hosts = hosts_lookup(&this.hosts_file, &name);
            if !from_hosts.is_empty() {
                let addrs: Addrs = Box::new(from_hosts.into_iter().map(|ip| SocketAddr::new(ip, 0)));
                return Ok(addrs);
            }
            let dns = match this.dns.get() {
                Some(r) => Ok(r),
                None => match build_dns(&this.resolv_conf) {
                    // Two lookups may race to build one; either is fine.
                    Ok(r) => Ok(this.dns.get_or_init(|| r)),
                    Err(why) => Err(why),
                },
            };
            let resolver = match dns {
                Ok(r) => r,
                Err(why) => {
                    return Err(format!(
                        "cannot resolve {name}: not in /etc/hosts and {why}; use the registry's IP address"
                    )
                    .into())
                }
            };
            let lookup = resolver.lookup_ip(name.as_str()).await?;
            let addrs: Vec<SocketAddr> = lookup.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_lookup() {
        let text = "127.0.0.1 localhost\n# 10.0.0.9 spectro.registry.local\n10.0.0.5  spectro.registry.local harbor # site\n::1 ip6-localhost\n";
        assert_eq!(lookup_hosts(text, "spectro.registry.local"), vec!["10.0.0.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(lookup_hosts(text, "HARBOR"), vec!["10.0.0.5".parse::<IpAddr>().unwrap()]);
        assert!(lookup_hosts(text, "nowhere").is_empty());
        assert_eq!(hosts_lookup(Path::new("/nonexistent"), "localhost").len(), 2);
    }

    #[tokio::test]
    async fn a_missing_resolv_conf_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let r = Resolver {
            hosts_file: dir.path().join("hosts"),
            resolv_conf: dir.path().join("resolv.conf"),
            dns: Arc::default(),
        };
        let name = || "edgeiso-test.invalid".parse::<Name>().unwrap();
        let e = r.resolve(name()).await.err().expect("no resolv.conf: no DNS");
        assert!(e.to_string().contains("no usable") && e.to_string().contains("resolv.conf"), "{e}");
        // As in an initramfs where networking comes up later: the file
        // appears, and the next lookup uses it (and fails only for the name).
        std::fs::write(dir.path().join("resolv.conf"), "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n").unwrap();
        let e = r.resolve(name()).await.err().expect(".invalid never resolves");
        assert!(!e.to_string().contains("no usable"), "the set-up failure was cached: {e}");
        assert!(r.dns.get().is_some());
    }
}
