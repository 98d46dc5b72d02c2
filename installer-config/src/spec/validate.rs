//! From the raw forms to the model: every value checked where it is
//! written (file:line:column), relative paths resolved against the spec's
//! folder, and anything refused that would only fail later (on the build
//! host, or worse, on the node).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use edgeiso_bundle::ImageRef;
use edgeiso_contract::RegistryUrl;

use super::checks::*;
use super::load::canonical_host;
use super::model::*;
use super::raw::*;
use crate::error::{Pos, SpecError};

pub(super) struct Validator<'a> {
    pub(super) file: &'a Path,
    pub(super) base: PathBuf,
    /// Paths as written in the spec -> where those files are now (a golden
    /// ISO's copy of its spec's inputs, `edgeiso personalize`).
    pub(super) remap: Option<&'a BTreeMap<String, PathBuf>>,
    /// Every file and folder the spec names, in the order met.
    pub(super) inputs: std::cell::RefCell<Vec<SpecInput>>,
    /// A site file's fragment (`site_file`): checks that depend on keys only
    /// the golden's spec has (which names Harbor's certificate must serve
    /// depends on how Harbor is deployed) wait for the merged spec.
    pub(super) fragment: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Want {
    File,
    Dir,
}

impl Validator<'_> {
    fn err(&self, pos: Option<Pos>, message: impl Into<String>) -> SpecError {
        SpecError::invalid(self.file, pos, message)
    }

    /// Resolve a path against the spec's folder and check it exists.
    fn path(&self, s: &Sp<String>, key: &str, want: Want) -> Result<PathBuf, SpecError> {
        if s.value.trim().is_empty() {
            return Err(self.err(pos(s), format!("{key} is empty")));
        }
        let p = match self.remap.and_then(|m| m.get(&s.value)) {
            Some(moved) => moved.clone(),
            None if Path::new(&s.value).is_absolute() => PathBuf::from(&s.value),
            None => self.base.join(&s.value),
        };
        let ok = match want {
            Want::File => p.is_file(),
            Want::Dir => p.is_dir(),
        };
        if !ok {
            let kind = if want == Want::File { "file" } else { "folder" };
            return Err(self.err(pos(s), format!("{key}: no such {kind}: {}", p.display())));
        }
        self.inputs.borrow_mut().push(SpecInput {
            key: key.to_owned(),
            written: s.value.clone(),
            path: p.clone(),
            dir: want == Want::Dir,
        });
        Ok(p)
    }

    pub(super) fn spec(&self, raw: RawSpec) -> Result<Spec, SpecError> {
        let name = raw.name.value.clone();
        if let Err(why) = check_dns_label(&name) {
            return Err(self.err(pos(&raw.name), format!("name `{name}` {why}")));
        }

        // Harbor first: where images land (its project) bounds their names.
        let harbor = self.harbor(raw.harbor.as_ref())?;
        let mut seen: HashMap<ImageRef, (Option<Pos>, &'static str)> = HashMap::new();
        let images = self.images(&raw.images, "images", &harbor.project, &mut seen)?;
        let bootstrap_images = self.images(&raw.bootstrap_images, "bootstrapImages", &harbor.project, &mut seen)?;

        let mut registries: Vec<RegistrySpec> = Vec::new();
        let mut registry_pos: HashMap<String, Option<Pos>> = HashMap::new();
        let mut secret_names: HashMap<String, Option<Pos>> = HashMap::new();
        for r in &raw.registries {
            let reg = self.registry(r)?;
            let key = canonical_host(&reg.host);
            if let Some(first) = registry_pos.get(&key) {
                return Err(self.err(
                    pos(&r.value.host),
                    format!("registry {} is listed twice (first at {})", reg.host, fmt_pos(*first)),
                ));
            }
            registry_pos.insert(key, pos(&r.value.host));
            if let (Some(s), Some(sp)) = (&reg.secret, &r.value.secret) {
                if let Some(first) = secret_names.insert(s.name.clone(), pos(sp)) {
                    return Err(self.err(
                        pos(sp),
                        format!("secret name `{}` is used twice (first at {})", s.name, fmt_pos(first)),
                    ));
                }
            }
            registries.push(reg);
        }

        let site = match raw.site {
            Some(s) => self.site(s, &registries)?,
            None => SiteSpec::default(),
        };
        let install = match raw.install {
            Some(i) => self.install(&i)?,
            None => InstallSpec::default(),
        };
        let mut users = Vec::new();
        for u in &raw.users {
            users.push(self.user(u)?);
        }
        let user_data = raw
            .user_data
            .as_ref()
            .map(|p| {
                let path = self.path(p, "userData", Want::File)?;
                super::user_data::check(&path).map_err(|why| self.err(pos(p), format!("userData: {why}")))?;
                Ok::<_, SpecError>(path)
            })
            .transpose()?;
        let kubernetes = KubernetesSpec { distribution: raw.kubernetes.map(|k| k.distribution).unwrap_or_default() };
        if !kubernetes.distribution.is_rancher() {
            if let Some(c) = raw.harbor.as_ref().and_then(|h| h.value.chart.as_ref()) {
                return Err(self.err(
                    pos(c),
                    format!(
                        "harbor.chart needs k3s or RKE2 (their HelmChart controller deploys it); with kubernetes.distribution {} give harbor.manifests, or leave both out and let the cluster profile's Harbor pack deploy it",
                        kubernetes.distribution.as_str()
                    ),
                ));
            }
        }
        let hardware = raw
            .hardware
            .as_ref()
            .map(|h| {
                let nodes = h.value.nodes.unwrap_or(1);
                if nodes == 0 {
                    return Err(self.err(pos(h), "hardware.nodes must be at least 1"));
                }
                Ok(HardwareSpec {
                    nodes,
                    cpus: h.value.cpus,
                    memory_gib: h.value.memory_gib,
                    disk_gib: h.value.disk_gib,
                })
            })
            .transpose()?;
        let profile = raw.profile.as_ref().map(|p| self.path(p, "profile", Want::File)).transpose()?;

        Ok(Spec {
            name,
            images,
            bootstrap_images,
            registries,
            site,
            install,
            users,
            user_data,
            user_data_wins: raw.user_data_wins,
            harbor,
            kubernetes,
            airgap_strict: raw.airgap_strict,
            hardware,
            profile,
            agent: self.agent(raw.agent.as_ref())?,
            trust: raw.trust.as_ref().map(|t| self.trust(t)).transpose()?,
            source_path: self.file.to_owned(),
            inputs: self.inputs.take(),
        })
    }

    /// The key must be usable now: a bad one would only show on the node,
    /// as every bundle refused.
    fn trust(&self, raw: &RawTrust) -> Result<TrustSpec, SpecError> {
        use edgeiso_bundle::signature::{read_key_file, VerifyingKey};
        let path = self.path(&raw.public_key, "trust.publicKey", Want::File)?;
        let bad = |e: edgeiso_bundle::signature::SignatureError| {
            self.err(pos(&raw.public_key), format!("trust.publicKey: {e}"))
        };
        let pem = read_key_file(&path).map_err(bad)?;
        VerifyingKey::from_pem(&path, &pem).map_err(bad)?;
        Ok(TrustSpec { public_key: path, public_key_pem: pem })
    }

    fn agent(&self, raw: Option<&RawAgent>) -> Result<AgentSpec, SpecError> {
        let Some(raw) = raw else { return Ok(AgentSpec::default()) };
        let live_kernel_args = match (&raw.live_kernel_args, raw.live_load) {
            (None, true) => DEFAULT_LIVE_KERNEL_ARGS.map(String::from).to_vec(),
            (None, false) => Vec::new(),
            (Some(list), false) => {
                return Err(self.err(
                    pos(list),
                    "agent.liveKernelArgs is set but agent.liveLoad is not true: the arguments are only added to \
                     the boot entries for the live load (they bring the network up in the live initramfs); set \
                     liveLoad: true or remove liveKernelArgs",
                ))
            }
            (Some(list), true) => {
                let mut seen: HashMap<&str, Option<Pos>> = HashMap::new();
                let mut out = Vec::with_capacity(list.value.len());
                for arg in &list.value {
                    check_kernel_arg(&arg.value)
                        .map_err(|why| self.err(pos(arg), format!("agent.liveKernelArgs: {:?} {why}", arg.value)))?;
                    if let Some(first) = seen.insert(&arg.value, pos(arg)) {
                        return Err(self.err(
                            pos(arg),
                            format!(
                                "agent.liveKernelArgs: {} is listed twice (first at {})",
                                arg.value,
                                fmt_pos(first)
                            ),
                        ));
                    }
                    out.push(arg.value.clone());
                }
                out
            }
        };
        Ok(AgentSpec { live_load: raw.live_load, live_kernel_args })
    }

    fn images(
        &self,
        raw: &[Sp<RawImage>],
        list: &'static str,
        project: &str,
        seen: &mut HashMap<ImageRef, (Option<Pos>, &'static str)>,
    ) -> Result<Vec<ImageSpec>, SpecError> {
        let mut out = Vec::with_capacity(raw.len());
        for entry in raw {
            let at = pos(entry);
            let reference =
                ImageRef::parse(&entry.value.reference).map_err(|e| self.err(at, format!("{list}: {e}")))?;
            check_harbor_name(project, &reference).map_err(|why| self.err(at, format!("{list}: {why}")))?;
            if let Some((first, first_list)) = seen.get(&reference) {
                return Err(self.err(
                    at,
                    format!(
                        "{list}: `{}` is listed twice: here and at {} ({first_list}){}",
                        entry.value.reference,
                        fmt_pos(*first),
                        if entry.value.reference == reference.as_str() {
                            String::new()
                        } else {
                            format!("; both mean `{reference}`")
                        }
                    ),
                ));
            }
            seen.insert(reference.clone(), (at, list));
            let platforms = match &entry.value.platforms {
                None => Platforms::default(),
                Some(RawPlatforms::All) => Platforms::All,
                Some(RawPlatforms::List(l)) => {
                    if l.is_empty() {
                        return Err(self.err(at, format!("{list}: `{reference}`: platforms is empty")));
                    }
                    for p in l {
                        if !is_platform(p) {
                            return Err(self.err(
                                at,
                                format!(
                                    "{list}: `{reference}`: `{p}` is not a platform like linux/amd64 or linux/arm64/v8"
                                ),
                            ));
                        }
                    }
                    let mut l = l.clone();
                    l.dedup();
                    Platforms::List(l)
                }
            };
            out.push(ImageSpec { reference, platforms });
        }
        Ok(out)
    }

    fn registry(&self, r: &Sp<RawRegistry>) -> Result<RegistrySpec, SpecError> {
        let raw = &r.value;
        let at = pos(&raw.host);
        let mut host = raw.host.value.trim().to_owned();
        let mut scheme = None;
        if let Some((s, rest)) = host.split_once("://") {
            if raw.kind == RegistryKind::Image {
                return Err(self.err(
                    at,
                    format!(
                        "registry host `{host}` has a scheme: write the bare host `{}` (and `insecure: true` for plain HTTP)",
                        rest.trim_end_matches('/')
                    ),
                ));
            }
            if s != "https" && s != "http" {
                return Err(self.err(at, format!("helm registry `{host}`: scheme must be https or http")));
            }
            scheme = Some(s.to_owned());
            host = rest.trim_end_matches('/').to_owned();
        }
        check_host(&host).map_err(|why| self.err(at, format!("registry host `{host}` {why}")))?;
        if let Some(p) = &raw.password {
            return Err(self.err(
                pos(p),
                format!("registry {host}: passwords never go in the spec; use passwordFile (a file) or passwordEnv (a variable)"),
            ));
        }
        let ca_file = raw.ca_file.as_ref().map(|p| self.path(p, "caFile", Want::File)).transpose()?;
        let password_file = raw.password_file.as_ref().map(|p| self.path(p, "passwordFile", Want::File)).transpose()?;
        if password_file.is_some() && raw.password_env.is_some() {
            return Err(self.err(pos(r), format!("registry {host}: give passwordFile or passwordEnv, not both")));
        }
        let has_password = password_file.is_some() || raw.password_env.is_some();
        match (&raw.username, has_password) {
            (Some(_), false) => {
                return Err(self.err(pos(r), format!("registry {host}: username needs passwordFile or passwordEnv")))
            }
            (None, true) => {
                return Err(self.err(pos(r), format!("registry {host}: a password needs a username")));
            }
            _ => {}
        }
        if let Some(v) = &raw.password_env {
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.err(pos(r), format!("registry {host}: passwordEnv `{v}` is not a variable name")));
            }
        }
        let secret = match &raw.secret {
            Some(s) => {
                check_dns_subdomain(&s.value.name)
                    .map_err(|why| self.err(pos(s), format!("secret name `{}` {why}", s.value.name)))?;
                if raw.username.is_none() {
                    return Err(self.err(
                        pos(s),
                        format!(
                            "registry {host}: a credential Secret needs username and passwordFile (or passwordEnv)"
                        ),
                    ));
                }
                Some(SecretSpec { name: s.value.name.clone() })
            }
            None => None,
        };
        Ok(RegistrySpec {
            host,
            insecure: raw.insecure,
            ca_file,
            username: raw.username.clone(),
            password_file,
            password_env: raw.password_env.clone(),
            secret,
            kind: raw.kind,
            scheme,
            source_path: self.file.to_owned(),
            pos: pos(r),
        })
    }

    fn site(&self, raw: RawSite, registries: &[RegistrySpec]) -> Result<SiteSpec, SpecError> {
        let known = |host: &str, at: Option<Pos>, key: &str| -> Result<String, SpecError> {
            let want = canonical_host(host);
            match registries.iter().find(|r| canonical_host(&r.host) == want) {
                Some(r) if r.username.is_some() => Ok(r.host.clone()),
                Some(_) => Err(self.err(at, format!("{key}: registry {host} has no username/passwordFile"))),
                None => {
                    Err(self.err(at, format!("{key}: {host} is not one of registries[] (credentials come from there)")))
                }
            }
        };
        if let Some(n) = &raw.name {
            if n.value.trim().is_empty() {
                return Err(self.err(pos(n), "site.name is empty"));
            }
        }
        if let Some(h) = &raw.host_name {
            check_dns_label(&h.value).map_err(|why| self.err(pos(h), format!("site.hostName `{}` {why}", h.value)))?;
        }
        let network = raw.network.map(|n| self.network(n)).transpose()?;
        let ca_certs =
            raw.ca_certs.iter().map(|p| self.path(p, "site.caCerts", Want::File)).collect::<Result<_, _>>()?;
        let registry_credentials = raw
            .registry_credentials
            .as_ref()
            .map(|rc| {
                let registry = known(&rc.value.registry, pos(rc), "site.registryCredentials")?;
                Ok::<_, SpecError>(RegistryCredentialsSpec { registry, path: rc.value.path.clone() })
            })
            .transpose()?;
        let external_registries = raw
            .external_registries
            .map(|er| {
                let mut list = Vec::new();
                for r in &er.registries {
                    let registry = known(&r.value.registry, pos(r), "site.externalRegistries")?;
                    list.push(ExternalRegistrySpec {
                        registry,
                        path: r.value.path.clone(),
                        repository_name: r.value.repository_name.clone(),
                    });
                }
                Ok::<_, SpecError>(ExternalRegistriesSpec { registries: list, mapping_rules: er.mapping_rules })
            })
            .transpose()?;
        Ok(SiteSpec {
            name: raw.name.map(|n| n.value),
            host_name: raw.host_name.map(|h| h.value),
            tags: raw.tags,
            network,
            ca_certs,
            legacy_agent: raw.legacy_agent,
            image_redirect_webhook: raw.image_redirect_webhook,
            registry_credentials,
            external_registries,
        })
    }

    fn network(&self, raw: RawNetwork) -> Result<NetworkSpec, SpecError> {
        for (key, v) in [("httpProxy", &raw.http_proxy), ("httpsProxy", &raw.https_proxy)] {
            if let Some(v) = v {
                if !(v.value.starts_with("http://") || v.value.starts_with("https://")) {
                    return Err(self.err(pos(v), format!("site.network.{key} must be an http:// or https:// URL")));
                }
            }
        }
        if let Some(ns) = &raw.nameserver {
            ns.value.parse::<IpAddr>().map_err(|_| {
                self.err(pos(ns), format!("site.network.nameserver `{}` is not an IP address", ns.value))
            })?;
        }
        let mut interfaces = BTreeMap::new();
        for (nic, i) in raw.interfaces {
            let at = pos(&i);
            let ip = |key: &str, v: &Option<String>| -> Result<Option<IpAddr>, SpecError> {
                v.as_ref()
                    .map(|s| {
                        s.parse::<IpAddr>().map_err(|_| {
                            self.err(at, format!("site.network.interfaces.{nic}.{key} `{s}` is not an IP address"))
                        })
                    })
                    .transpose()
            };
            let spec = match i.value.kind {
                InterfaceKind::Dhcp => {
                    if i.value.ip_address.is_some() || i.value.mask.is_some() || i.value.gateway.is_some() {
                        return Err(self.err(
                            at,
                            format!("site.network.interfaces.{nic}: type dhcp takes no ipAddress, mask or gateway"),
                        ));
                    }
                    InterfaceSpec::Dhcp
                }
                InterfaceKind::Static => {
                    let ip_address = ip("ipAddress", &i.value.ip_address)?.ok_or_else(|| {
                        self.err(at, format!("site.network.interfaces.{nic}: type static needs ipAddress"))
                    })?;
                    let mask = i.value.mask.clone().ok_or_else(|| {
                        self.err(at, format!("site.network.interfaces.{nic}: type static needs mask"))
                    })?;
                    let Some(prefix_len) = mask_prefix_len(&mask, ip_address) else {
                        return Err(self.err(
                            at,
                            format!("site.network.interfaces.{nic}.mask `{mask}`: give a prefix length for the address (IPv4 0-32, IPv6 0-128) or a dotted IPv4 mask (255.255.255.0)"),
                        ));
                    };
                    InterfaceSpec::Static {
                        ip_address,
                        prefix_len,
                        gateway: ip("gateway", &i.value.gateway)?,
                        nameserver: ip("nameserver", &i.value.nameserver)?,
                    }
                }
            };
            interfaces.insert(nic, spec);
        }
        Ok(NetworkSpec {
            http_proxy: raw.http_proxy.map(|v| v.value),
            https_proxy: raw.https_proxy.map(|v| v.value),
            no_proxy: raw.no_proxy,
            nameserver: raw.nameserver.map(|v| v.value),
            interfaces,
        })
    }

    fn install(&self, raw: &Sp<RawInstall>) -> Result<InstallSpec, SpecError> {
        let d = InstallSpec::default();
        let i = &raw.value;
        let reboot = i.reboot.unwrap_or(i.poweroff != Some(true) && d.reboot);
        let poweroff = i.poweroff.unwrap_or(d.poweroff);
        if reboot && poweroff {
            return Err(self.err(pos(raw), "install: reboot and poweroff cannot both be true"));
        }
        let device = i.device.clone().unwrap_or(d.device);
        if device != "auto" && !device.starts_with("/dev/") {
            return Err(self.err(pos(raw), format!("install.device `{device}` must be `auto` or a /dev/ path")));
        }
        Ok(InstallSpec {
            device,
            reboot,
            poweroff,
            persistent_size_mib: i.persistent_size_mib,
            auto: i.auto.unwrap_or(d.auto),
            no_users: i.no_users.as_ref().map(|n| n.value),
            no_users_pos: i.no_users.as_ref().and_then(pos),
        })
    }

    fn user(&self, raw: &Sp<RawUser>) -> Result<UserSpec, SpecError> {
        let u = &raw.value;
        let valid = !u.name.is_empty()
            && u.name.len() <= 32
            && u.name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && u.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            return Err(self.err(pos(raw), format!("users: `{}` is not a valid user name", u.name)));
        }
        if let Some(p) = &u.password {
            return Err(self.err(
                pos(p),
                format!("users: {}: passwords never go in the spec; use passwordFile (a crypt hash is best)", u.name),
            ));
        }
        Ok(UserSpec {
            name: u.name.clone(),
            password_file: u.password_file.as_ref().map(|p| self.path(p, "passwordFile", Want::File)).transpose()?,
            groups: u.groups.clone(),
            ssh_authorized_keys: u.ssh_authorized_keys.clone(),
        })
    }

    fn harbor(&self, raw: Option<&Sp<RawHarbor>>) -> Result<HarborSpec, SpecError> {
        let empty;
        let (h, at) = match raw {
            Some(h) => (&h.value, pos(h)),
            None => {
                empty = RawHarbor::empty();
                (&empty, None)
            }
        };
        let node_port = match &h.node_port {
            Some(p) => {
                if !(30000..=32767).contains(&p.value) {
                    return Err(self.err(pos(p), format!("harbor.nodePort {} is outside 30000-32767", p.value)));
                }
                p.value
            }
            None => DEFAULT_HARBOR_NODE_PORT,
        };
        let url = match &h.url {
            Some(u) => RegistryUrl::parse(&u.value)
                .map_err(|why| self.err(pos(u), format!("harbor.url `{}` {why}", u.value)))?,
            None => RegistryUrl { tls: true, host: "127.0.0.1".into(), port: Some(node_port) },
        };
        let project = match &h.project {
            Some(p) => {
                check_project(&p.value)
                    .map_err(|why| self.err(pos(p), format!("harbor.project `{}` {why}", p.value)))?;
                p.value.clone()
            }
            None => DEFAULT_HARBOR_PROJECT.to_owned(),
        };
        if let Some(p) = &h.admin_password {
            return Err(self.err(
                pos(p),
                "harbor: the admin password never goes in the spec; use adminPasswordFile or adminPasswordEnv",
            ));
        }
        let admin_password_file =
            h.admin_password_file.as_ref().map(|p| self.path(p, "harbor.adminPasswordFile", Want::File)).transpose()?;
        if admin_password_file.is_some() && h.admin_password_env.is_some() {
            return Err(self.err(at, "harbor: give adminPasswordFile or adminPasswordEnv, not both"));
        }
        let vip = h
            .vip
            .as_ref()
            .map(|v| {
                v.value
                    .parse::<IpAddr>()
                    .map_err(|_| self.err(pos(v), format!("harbor.vip `{}` is not an IP address", v.value)))
            })
            .transpose()?;
        let namespace = match &h.namespace {
            Some(n) => {
                check_dns_label(&n.value)
                    .map_err(|why| self.err(pos(n), format!("harbor.namespace `{}` {why}", n.value)))?;
                n.value.clone()
            }
            None => DEFAULT_HARBOR_NAMESPACE.to_owned(),
        };
        let size = |v: &Option<Sp<String>>, key: &str| -> Result<Option<Size>, SpecError> {
            v.as_ref()
                .map(|s| Size::parse(&s.value).map_err(|why| self.err(pos(s), format!("harbor.storage.{key}: {why}"))))
                .transpose()
        };
        let storage = match &h.storage {
            Some(s) => HarborStorage {
                registry: size(&s.registry, "registry")?,
                job_service: size(&s.job_service, "jobService")?,
                database: size(&s.database, "database")?,
                redis: size(&s.redis, "redis")?,
                trivy: size(&s.trivy, "trivy")?,
            },
            None => HarborStorage::default(),
        };
        let tls = h
            .tls
            .as_ref()
            .map(|t| {
                Ok::<_, SpecError>(TlsSpec {
                    cert_file: self.path(&t.value.cert_file, "harbor.tls.certFile", Want::File)?,
                    key_file: self.path(&t.value.key_file, "harbor.tls.keyFile", Want::File)?,
                    ca_file: t
                        .value
                        .ca_file
                        .as_ref()
                        .map(|p| self.path(p, "harbor.tls.caFile", Want::File))
                        .transpose()?,
                })
            })
            .transpose()?;
        let deployment = match (&h.chart, &h.manifests) {
            (Some(c), Some(_)) => {
                return Err(self.err(pos(c), "harbor: give chart or manifests, not both"));
            }
            (Some(c), None) => HarborDeployment::Chart(self.path(c, "harbor.chart", Want::File)?),
            (None, Some(m)) => HarborDeployment::Manifests(self.path(m, "harbor.manifests", Want::Dir)?),
            (None, None) => HarborDeployment::External,
        };
        let spec = HarborSpec {
            url,
            project,
            admin_password_file,
            admin_password_env: h.admin_password_env.clone(),
            node_port,
            vip,
            namespace,
            storage,
            storage_class: h.storage_class.clone(),
            tls,
            deployment,
        };
        if let (Some(t), Some(raw), false) = (&spec.tls, &h.tls, self.fragment) {
            super::harbor_cert::check(&t.cert_file, t.ca_file.as_deref(), &spec.served_names())
                .map_err(|why| self.err(pos(&raw.value.cert_file), format!("harbor.tls.certFile: {why}")))?;
        }
        Ok(spec)
    }
}

fn fmt_pos(p: Option<Pos>) -> String {
    match p {
        Some(p) => format!("line {}", p.line),
        None => "an earlier entry".into(),
    }
}
