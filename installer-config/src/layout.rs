//! Where things live: in the render output, on the installer ISO, and on the
//! installed node. The builder lays the render output into the ISO by these
//! rules, the user-data's stages copy it to the node by them, and the agent's
//! config points at the node paths. See `docs/render.md`.

/// The user-data, at the ISO root (Kairos reads `*.yaml` with `#cloud-config` there).
pub const CONFIG_YAML: &str = "config.yaml";
/// On the ISO, everything else render writes goes under this folder: with
/// the agent binary, everything edgeiso adds lives under one `/edgeiso/`.
pub const ISO_SITE_DIR: &str = "/edgeiso/site";
/// On the ISO: the agent binary (laid by the builder).
pub const ISO_AGENT_BIN: &str = "/edgeiso/bin/edgeiso-agent";
/// On the ISO: the bootstrap-images archive (images that must run before
/// Harbor exists), imported by k3s/RKE2 from their `agent/images/` folder.
pub const ISO_IMAGES_DIR: &str = "/edgeiso/images";
/// On the ISO: content bundles, where Palette's CanvOS puts them.
pub const ISO_CONTENT_DIR: &str = "/opt/spectrocloud/content";
/// Where Kairos mounts the booted ISO on the live system.
pub const LIVE_MEDIUM: &str = "/run/initramfs/live";
/// The label of Kairos' persistent partition (mounted at /usr/local on the node).
pub const PERSISTENT_LABEL: &str = "COS_PERSISTENT";

/// On the node: edgeiso's home on the persistent partition.
pub const NODE_ROOT: &str = "/usr/local/edgeiso";
pub const NODE_SITE_DIR: &str = "/usr/local/edgeiso/site";
pub const NODE_AGENT_BIN: &str = "/usr/local/edgeiso/bin/edgeiso-agent";
pub const NODE_CONTENT_DIR: &str = "/usr/local/edgeiso/content";
pub const NODE_STATE_DIR: &str = "/usr/local/edgeiso/state";
pub const NODE_IMAGES_DIR: &str = "/usr/local/edgeiso/images";
pub const NODE_AGENT_CONFIG: &str = "/usr/local/edgeiso/site/agent.yaml";
pub const NODE_HARBOR_CA: &str = "/usr/local/edgeiso/site/harbor/ca.crt";
pub const NODE_HARBOR_PASSWORD: &str = "/usr/local/edgeiso/site/harbor/admin-password";
pub const NODE_UNIT: &str = "/usr/local/edgeiso/site/systemd/edgeiso-agent.service";
pub const UNIT_NAME: &str = "edgeiso-agent.service";

/// Render output, relative to the output folder.
pub const OUT_AGENT_CONFIG: &str = "agent.yaml";
pub const OUT_HARBOR_CA: &str = "harbor/ca.crt";
pub const OUT_HARBOR_PASSWORD: &str = "harbor/admin-password";
pub const OUT_UNIT: &str = "systemd/edgeiso-agent.service";
pub const OUT_MANIFESTS: &str = "manifests";
pub const OUT_REGISTRY_CREDENTIALS: &str = "manifests/registry-credentials.yaml";
pub const OUT_HARBOR_CHART: &str = "manifests/harbor.yaml";
pub const OUT_HARBOR_SECRETS: &str = "manifests/harbor-secrets.yaml";
pub const OUT_CERTS_D: &str = "containerd/certs.d";
pub const OUT_K3S_REGISTRIES: &str = "k3s/registries.yaml";
pub const OUT_K3S_STRICT: &str = "k3s/config.yaml.d/90-edgeiso-airgap.yaml";
/// Marks a folder as render output, so a re-render may replace it.
pub const OUT_MARKER: &str = ".edgeiso-render";

/// Kairos' user-data must stay under this size or it is skipped.
pub const MAX_USER_DATA_BYTES: u64 = 1_000_000;
