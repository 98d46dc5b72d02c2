//! Where things live: in `edgeiso render`'s output, on the installer ISO, in
//! the initramfs overlay, on the live system and on the installed node. The
//! builder lays files out by these rules, the user-data's stages and the
//! dracut hook copy them by them, and the agent's configuration points at
//! them. See `docs/iso-layout.md` and `docs/render.md`.

/// `edgeiso render`'s output, relative to the output folder. On the ISO,
/// `config.yaml` goes to the root and the rest under [`iso::SITE_DIR`].
pub mod out {
    /// The user-data (Kairos reads `*.yaml` with `#cloud-config` at the ISO root).
    pub const CONFIG_YAML: &str = "config.yaml";
    pub const AGENT_CONFIG: &str = "agent.yaml";
    pub const HARBOR_CA: &str = "harbor/ca.crt";
    pub const HARBOR_PASSWORD: &str = "harbor/admin-password";
    /// The public key bundles must be signed by (the spec's
    /// `trust.publicKey`; decision 0015).
    pub const TRUST_KEY: &str = "trust/bundle-signing.pub";
    pub const UNIT: &str = "systemd/edgeiso-agent.service";
    pub const MANIFESTS: &str = "manifests";
    pub const REGISTRY_CREDENTIALS: &str = "manifests/registry-credentials.yaml";
    pub const HARBOR_CHART: &str = "manifests/harbor.yaml";
    pub const HARBOR_SECRETS: &str = "manifests/harbor-secrets.yaml";
    pub const CERTS_D: &str = "containerd/certs.d";
    pub const K3S_REGISTRIES: &str = "k3s/registries.yaml";
    pub const K3S_STRICT: &str = "k3s/config.yaml.d/90-edgeiso-airgap.yaml";
    /// kubeadm sites: the containerd setting that makes CRI read
    /// [`super::node::CONTAINERD_CERTS_D`] (installed as
    /// [`super::node::CONTAINERD_REGISTRY_DROP_IN`]).
    pub const CONTAINERD_REGISTRY_DROP_IN: &str = "containerd/conf.d/90-edgeiso-registry.toml";
    /// The image-redirect webhook: its MutatingWebhookConfiguration, its
    /// serving certificate and key, and its systemd unit.
    pub const WEBHOOK_MANIFEST: &str = "manifests/image-redirect-webhook.yaml";
    pub const WEBHOOK_CERT: &str = "webhook/tls.crt";
    pub const WEBHOOK_KEY: &str = "webhook/tls.key";
    pub const WEBHOOK_UNIT: &str = "systemd/edgeiso-webhook.service";
    /// kubeadm sites: the script and unit that import the bootstrap images
    /// and apply `manifests/` ([`crate::unit::KUBEADM_UNIT`]).
    pub const KUBEADM_BOOTSTRAP: &str = "kubeadm-bootstrap.sh";
    pub const KUBEADM_UNIT: &str = "systemd/edgeiso-kubeadm-bootstrap.service";
    /// Updates by courier stick: the udev rule, its unit and script
    /// ([`crate::unit::COURIER_UNIT`]).
    pub const COURIER_SCRIPT: &str = "courier.sh";
    pub const COURIER_UNIT: &str = "systemd/edgeiso-courier@.service";
    pub const COURIER_RULE: &str = "udev/90-edgeiso-courier.rules";
    /// Marks a folder as render output, so a re-render may replace it.
    pub const MARKER: &str = ".edgeiso-render";
    /// A thin bundle's source registries (`agent.yaml` `sources:`): the
    /// password and CA of the `n`th, numbered in host order. Named by number,
    /// not by host, so no host spelling (ports, IPv6 brackets) reaches a
    /// file name.
    pub const SOURCES_DIR: &str = "sources";
    pub fn source_password(n: usize) -> String {
        format!("{SOURCES_DIR}/{n}.password")
    }
    pub fn source_ca(n: usize) -> String {
        format!("{SOURCES_DIR}/{n}.ca.pem")
    }
}

/// On the installer ISO, absolute from its root. Everything edgeiso adds
/// lives under `/edgeiso/`, except what other tools look for elsewhere
/// (Kairos: `/config.yaml`; Palette: `/opt/spectrocloud/content`; boot
/// loaders: the initrd under `/boot`).
pub mod iso {
    pub const CONFIG_YAML: &str = "/config.yaml";
    /// The rest of the render output.
    pub const SITE_DIR: &str = "/edgeiso/site";
    /// The static agent.
    pub const AGENT_BIN: &str = "/edgeiso/bin/edgeiso-agent";
    /// The bootstrap-images archive (images that must run before Harbor
    /// exists), imported by k3s/RKE2 from their `agent/images/` folder.
    pub const IMAGES_DIR: &str = "/edgeiso/images";
    /// What the overlay tree holds; it also marks a folder as one edgeiso wrote.
    pub const OVERLAY_JSON: &str = "/edgeiso/overlay.json";
    /// Content bundles, where Palette's CanvOS puts them.
    pub const CONTENT_DIR: &str = "/opt/spectrocloud/content";
    /// The initramfs overlay every boot entry also loads.
    pub const INITRD: &str = "/boot/edgeiso.img";
    /// The site area ([`crate::site_area`]): every boot entry loads it last.
    pub const SITE_AREA: &str = "/boot/edgeiso-site.img";
    /// The golden's spec and every file it names, one tar (root-only):
    /// `edgeiso personalize` renders each site from it.
    pub const GOLDEN_INPUTS: &str = "/edgeiso/golden/inputs.tar";
}

/// In the initramfs overlay, relative to its root (the kernel unpacks it
/// over the base initrd).
pub mod initrd {
    pub const AGENT_BIN: &str = "edgeiso/bin/edgeiso-agent";
    /// The agent's configuration for a load from the live medium.
    pub const AGENT_CONFIG: &str = "edgeiso/agent-live.yaml";
    /// The dracut hook, in dracut's `$hookdir` (`/lib/dracut/hooks`, what
    /// dracut-lib.sh and dracut-pre-pivot.service read). On usr-merged
    /// initrds that is `/usr/lib/dracut/hooks/pre-pivot/`; on dracut-ng it
    /// resolves on to `/var/lib/dracut/hooks/pre-pivot/`; on initrds that are
    /// not usr-merged it is `/lib` itself. The archive holds no entries for
    /// its folders, so the kernel follows the base's symlinks (decision 0006).
    pub const DRACUT_HOOK: &str = "lib/dracut/hooks/pre-pivot/90-edgeiso.sh";
}

/// On the live system (the installer booted from the ISO).
pub mod live {
    /// Where Kairos' dracut (dmsquash-live) mounts the booted ISO.
    pub const MEDIUM: &str = "/run/initramfs/live";
    /// [`super::iso::SITE_DIR`] on the mounted medium: the golden's files.
    pub const MEDIUM_SITE_DIR: &str = "/run/initramfs/live/edgeiso/site";
    /// The site's files as this boot uses them: the hook copies the
    /// medium's here, then a personalised site's from the site area over
    /// them ([`crate::site_area`]). The live load and the installer read
    /// them here.
    pub const SITE_DIR: &str = "/run/edgeiso/site";
    /// [`super::iso::CONTENT_DIR`] on the mounted medium.
    pub const CONTENT_DIR: &str = "/run/initramfs/live/opt/spectrocloud/content";
    /// The hook's folder (tmpfs, carried into the live root).
    pub const RUN_DIR: &str = "/run/edgeiso";
    /// The agent, copied out of the initramfs so it outlives the switch to the root.
    pub const AGENT_BIN: &str = "/run/edgeiso/bin/edgeiso-agent";
    pub const AGENT_CONFIG: &str = "/run/edgeiso/agent-live.yaml";
    /// Where the live agent keeps its journal.
    pub const STATE_DIR: &str = "/run/edgeiso/state";
    /// The live load's `--json` events, log, and outcome (console marker lines).
    pub const LOAD_EVENTS: &str = "/run/edgeiso/load.json";
    pub const LOAD_LOG: &str = "/run/edgeiso/load.log";
    pub const LOAD_OUTCOME: &str = "/run/edgeiso/outcome";
}

/// On the installed node.
pub mod node {
    /// The label of Kairos' persistent partition (mounted at /usr/local).
    pub const PERSISTENT_LABEL: &str = "COS_PERSISTENT";
    /// edgeiso's home on the persistent partition.
    pub const ROOT: &str = "/usr/local/edgeiso";
    pub const SITE_DIR: &str = "/usr/local/edgeiso/site";
    pub const AGENT_BIN: &str = "/usr/local/edgeiso/bin/edgeiso-agent";
    pub const CONTENT_DIR: &str = "/usr/local/edgeiso/content";
    pub const STATE_DIR: &str = "/usr/local/edgeiso/state";
    pub const IMAGES_DIR: &str = "/usr/local/edgeiso/images";
    /// [`super::out::AGENT_CONFIG`] in [`SITE_DIR`].
    pub const AGENT_CONFIG: &str = "/usr/local/edgeiso/site/agent.yaml";
    pub const HARBOR_CA: &str = "/usr/local/edgeiso/site/harbor/ca.crt";
    pub const HARBOR_PASSWORD: &str = "/usr/local/edgeiso/site/harbor/admin-password";
    /// [`super::out::TRUST_KEY`] in [`SITE_DIR`].
    pub const TRUST_KEY: &str = "/usr/local/edgeiso/site/trust/bundle-signing.pub";
    /// [`super::out::UNIT`] in [`SITE_DIR`]; the stages install it as [`crate::unit::AGENT_UNIT_NAME`].
    pub const UNIT: &str = "/usr/local/edgeiso/site/systemd/edgeiso-agent.service";
    /// [`super::out::WEBHOOK_UNIT`] in [`SITE_DIR`]; installed as [`crate::unit::WEBHOOK_UNIT_NAME`].
    pub const WEBHOOK_UNIT: &str = "/usr/local/edgeiso/site/systemd/edgeiso-webhook.service";
    pub const WEBHOOK_CERT: &str = "/usr/local/edgeiso/site/webhook/tls.crt";
    pub const WEBHOOK_KEY: &str = "/usr/local/edgeiso/site/webhook/tls.key";
    /// [`super::out::KUBEADM_BOOTSTRAP`] and [`super::out::KUBEADM_UNIT`] in
    /// [`SITE_DIR`]; the unit is installed as [`crate::unit::KUBEADM_UNIT_NAME`].
    pub const KUBEADM_BOOTSTRAP: &str = "/usr/local/edgeiso/site/kubeadm-bootstrap.sh";
    pub const KUBEADM_UNIT: &str = "/usr/local/edgeiso/site/systemd/edgeiso-kubeadm-bootstrap.service";
    /// [`super::out::COURIER_SCRIPT`], [`super::out::COURIER_UNIT`] and
    /// [`super::out::COURIER_RULE`] in [`SITE_DIR`]; the boot stage installs
    /// the unit as [`crate::unit::COURIER_UNIT_NAME`] and the rule as [`COURIER_RULE_INSTALLED`].
    pub const COURIER_SCRIPT: &str = "/usr/local/edgeiso/site/courier.sh";
    pub const COURIER_UNIT: &str = "/usr/local/edgeiso/site/systemd/edgeiso-courier@.service";
    pub const COURIER_RULE: &str = "/usr/local/edgeiso/site/udev/90-edgeiso-courier.rules";
    pub const COURIER_RULE_INSTALLED: &str = "/etc/udev/rules.d/90-edgeiso-courier.rules";
    /// The agent's journal when no `stateDir` is given.
    pub const DEFAULT_STATE_DIR: &str = "/var/lib/edgeiso";
    /// The nodes' pull credential and the agent's copies of the mirror files
    /// it installed (decision 0012): `credential.json`, and each installed
    /// file under `files/<its absolute path>` ([`kept_copy`]).
    pub const NODE_PULL_DIR: &str = "/usr/local/edgeiso/state/node-pull";
    /// Where containerd (plain, and on kubeadm sites) reads `<host>/hosts.toml`.
    pub const CONTAINERD_CERTS_D: &str = "/etc/containerd/certs.d";
    /// A containerd config drop-in (read when the main config imports
    /// `/etc/containerd/conf.d/*.toml`).
    pub const CONTAINERD_REGISTRY_DROP_IN: &str = "/etc/containerd/conf.d/90-edgeiso-registry.toml";

    /// k3s/RKE2 read their mirrors from here when they start.
    pub fn rancher_registries_yaml(dist: &str) -> String {
        format!("/etc/rancher/{dist}/registries.yaml")
    }
    /// The `certs.d` k3s/RKE2 generate from `registries.yaml` at start and
    /// point their embedded containerd's `config_path` at (k3s
    /// `pkg/daemons/config`, `Containerd.Registry`).
    pub fn rancher_certs_d(dist: &str) -> String {
        format!("/var/lib/rancher/{dist}/agent/etc/containerd/certs.d")
    }
    /// Where the agent keeps the copy of a file it installed at `target`.
    pub fn kept_copy(keep_dir: &std::path::Path, target: &std::path::Path) -> std::path::PathBuf {
        keep_dir.join("files").join(target.strip_prefix("/").unwrap_or(target))
    }
}

/// Where the agent looks for bundles when it is given none: the live ISO
/// mount, and the content folder as laid out on the ISO and on a node.
pub const DEFAULT_BUNDLE_SEARCH: &[&str] = &[live::MEDIUM, iso::CONTENT_DIR];

/// Where a site's files are, seen from an agent run: on the installed node
/// (the systemd unit) or on the live system (the dracut hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentSite {
    /// The render output (`agent.yaml`, `harbor/`, ...).
    pub site_dir: &'static str,
    /// The bundles to load.
    pub content_dir: &'static str,
    /// The journal.
    pub state_dir: &'static str,
}

impl AgentSite {
    pub const NODE: AgentSite =
        AgentSite { site_dir: node::SITE_DIR, content_dir: node::CONTENT_DIR, state_dir: node::STATE_DIR };
    pub const LIVE: AgentSite =
        AgentSite { site_dir: live::SITE_DIR, content_dir: live::CONTENT_DIR, state_dir: live::STATE_DIR };

    /// A render-output file (`out::*`) as this agent sees it.
    pub fn site_file(&self, rel: &str) -> String {
        format!("{}/{rel}", self.site_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spelled_out_paths_agree_with_their_parts() {
        assert_eq!(live::MEDIUM_SITE_DIR, format!("{}{}", live::MEDIUM, iso::SITE_DIR));
        assert!(live::SITE_DIR.starts_with(live::RUN_DIR));
        assert_eq!(live::CONTENT_DIR, format!("{}{}", live::MEDIUM, iso::CONTENT_DIR));
        assert_eq!(node::AGENT_CONFIG, AgentSite::NODE.site_file(out::AGENT_CONFIG));
        assert_eq!(node::HARBOR_CA, AgentSite::NODE.site_file(out::HARBOR_CA));
        assert_eq!(node::HARBOR_PASSWORD, AgentSite::NODE.site_file(out::HARBOR_PASSWORD));
        assert_eq!(node::TRUST_KEY, AgentSite::NODE.site_file(out::TRUST_KEY));
        assert_eq!(node::UNIT, AgentSite::NODE.site_file(out::UNIT));
        assert_eq!(node::WEBHOOK_UNIT, AgentSite::NODE.site_file(out::WEBHOOK_UNIT));
        assert_eq!(node::WEBHOOK_CERT, AgentSite::NODE.site_file(out::WEBHOOK_CERT));
        assert_eq!(node::WEBHOOK_KEY, AgentSite::NODE.site_file(out::WEBHOOK_KEY));
        assert_eq!(iso::CONFIG_YAML, format!("/{}", out::CONFIG_YAML));
        assert_eq!(iso::AGENT_BIN, format!("/{}", initrd::AGENT_BIN));
        for p in [node::SITE_DIR, node::AGENT_BIN, node::CONTENT_DIR, node::STATE_DIR, node::IMAGES_DIR] {
            assert!(p.starts_with(node::ROOT), "{p}");
        }
        for p in [live::AGENT_BIN, live::AGENT_CONFIG, live::STATE_DIR, live::LOAD_LOG, live::LOAD_OUTCOME] {
            assert!(p.starts_with(live::RUN_DIR), "{p}");
        }
    }
}
