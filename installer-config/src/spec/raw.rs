//! The spec as written: serde mirrors of the YAML (`deny_unknown_fields`)
//! that keep the line and column of the values worth pointing at.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::model::{Distribution, RegistryKind};
use crate::error::Pos;

pub(super) type Sp<T> = Spanned<T>;

pub(super) fn pos<T>(s: &Sp<T>) -> Option<Pos> {
    Pos::of(&s.referenced)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSpec {
    pub(super) name: Sp<String>,
    #[serde(default)]
    pub(super) images: Vec<Sp<RawImage>>,
    #[serde(default)]
    pub(super) bootstrap_images: Vec<Sp<RawImage>>,
    #[serde(default)]
    pub(super) registries: Vec<Sp<RawRegistry>>,
    #[serde(default)]
    pub(super) site: Option<RawSite>,
    #[serde(default)]
    pub(super) install: Option<Sp<RawInstall>>,
    #[serde(default)]
    pub(super) users: Vec<Sp<RawUser>>,
    #[serde(default)]
    pub(super) user_data: Option<Sp<String>>,
    #[serde(default)]
    pub(super) user_data_wins: bool,
    #[serde(default)]
    pub(super) harbor: Option<Sp<RawHarbor>>,
    #[serde(default)]
    pub(super) kubernetes: Option<RawKubernetes>,
    #[serde(default)]
    pub(super) airgap_strict: bool,
    #[serde(default)]
    pub(super) hardware: Option<Sp<RawHardware>>,
    #[serde(default)]
    pub(super) profile: Option<Sp<String>>,
    #[serde(default)]
    pub(super) agent: Option<RawAgent>,
    #[serde(default)]
    pub(super) trust: Option<RawTrust>,
}

/// `trust:`: what the node requires of bundles (decision 0015).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawTrust {
    pub(super) public_key: Sp<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawAgent {
    #[serde(default)]
    pub(super) live_load: bool,
    #[serde(default)]
    pub(super) live_kernel_args: Option<Sp<Vec<Sp<String>>>>,
}

/// An image entry: a reference string, or `{ref, platforms}`.
pub(super) struct RawImage {
    pub(super) reference: String,
    pub(super) platforms: Option<RawPlatforms>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImageLong {
    #[serde(rename = "ref")]
    pub(super) reference: String,
    #[serde(default)]
    pub(super) platforms: Option<RawPlatforms>,
}

impl<'de> Deserialize<'de> for RawImage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawImage;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an image reference, or a mapping with `ref` and `platforms`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawImage, E> {
                Ok(RawImage { reference: s.to_owned(), platforms: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<RawImage, A::Error> {
                let long = RawImageLong::deserialize(MapAccessDeserializer::new(a))?;
                Ok(RawImage { reference: long.reference, platforms: long.platforms })
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) enum RawPlatforms {
    All,
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for RawPlatforms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPlatforms;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`all` or a list of platforms like [linux/amd64, linux/arm64]")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawPlatforms, E> {
                if s == "all" {
                    Ok(RawPlatforms::All)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(s), &self))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawPlatforms, A::Error> {
                let mut v = Vec::new();
                while let Some(p) = a.next_element::<String>()? {
                    v.push(p);
                }
                Ok(RawPlatforms::List(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawRegistry {
    pub(super) host: Sp<String>,
    #[serde(default)]
    pub(super) insecure: bool,
    #[serde(default)]
    pub(super) ca_file: Option<Sp<String>>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) password_file: Option<Sp<String>>,
    #[serde(default)]
    pub(super) password_env: Option<String>,
    /// Refused with a clear message: passwords never appear in the spec.
    #[serde(default)]
    pub(super) password: Option<Sp<de::IgnoredAny>>,
    #[serde(default)]
    pub(super) secret: Option<Sp<RawSecret>>,
    #[serde(default)]
    pub(super) kind: RegistryKind,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecret {
    pub(super) name: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSite {
    #[serde(default)]
    pub(super) name: Option<Sp<String>>,
    #[serde(default)]
    pub(super) host_name: Option<Sp<String>>,
    #[serde(default)]
    pub(super) tags: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) network: Option<RawNetwork>,
    #[serde(default)]
    pub(super) ca_certs: Vec<Sp<String>>,
    #[serde(default)]
    pub(super) legacy_agent: bool,
    #[serde(default)]
    pub(super) image_redirect_webhook: Option<bool>,
    #[serde(default)]
    pub(super) registry_credentials: Option<Sp<RawRegistryCredentials>>,
    #[serde(default)]
    pub(super) external_registries: Option<RawExternalRegistries>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawNetwork {
    #[serde(default)]
    pub(super) http_proxy: Option<Sp<String>>,
    #[serde(default)]
    pub(super) https_proxy: Option<Sp<String>>,
    #[serde(default)]
    pub(super) no_proxy: Option<String>,
    #[serde(default)]
    pub(super) nameserver: Option<Sp<String>>,
    #[serde(default)]
    pub(super) interfaces: BTreeMap<String, Sp<RawInterface>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawInterface {
    #[serde(rename = "type")]
    pub(super) kind: InterfaceKind,
    #[serde(default)]
    pub(super) ip_address: Option<String>,
    #[serde(default)]
    pub(super) mask: Option<String>,
    #[serde(default)]
    pub(super) gateway: Option<String>,
    #[serde(default)]
    pub(super) nameserver: Option<String>,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub(super) enum InterfaceKind {
    Static,
    Dhcp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawRegistryCredentials {
    pub(super) registry: String,
    #[serde(default)]
    pub(super) path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawExternalRegistries {
    pub(super) registries: Vec<Sp<RawExternalRegistry>>,
    #[serde(default)]
    pub(super) mapping_rules: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawExternalRegistry {
    pub(super) registry: String,
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) repository_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawInstall {
    #[serde(default)]
    pub(super) device: Option<String>,
    #[serde(default)]
    pub(super) reboot: Option<bool>,
    #[serde(default)]
    pub(super) poweroff: Option<bool>,
    #[serde(default, rename = "persistentSizeMiB")]
    pub(super) persistent_size_mib: Option<u64>,
    #[serde(default)]
    pub(super) auto: Option<bool>,
    #[serde(default)]
    pub(super) no_users: Option<Sp<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawUser {
    pub(super) name: String,
    #[serde(default)]
    pub(super) password_file: Option<Sp<String>>,
    #[serde(default)]
    pub(super) password: Option<Sp<de::IgnoredAny>>,
    #[serde(default)]
    pub(super) groups: Vec<String>,
    #[serde(default)]
    pub(super) ssh_authorized_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawHarbor {
    #[serde(default)]
    pub(super) url: Option<Sp<String>>,
    #[serde(default)]
    pub(super) project: Option<Sp<String>>,
    #[serde(default)]
    pub(super) admin_password_file: Option<Sp<String>>,
    #[serde(default)]
    pub(super) admin_password_env: Option<String>,
    #[serde(default)]
    pub(super) admin_password: Option<Sp<de::IgnoredAny>>,
    #[serde(default)]
    pub(super) node_port: Option<Sp<u16>>,
    #[serde(default)]
    pub(super) vip: Option<Sp<String>>,
    #[serde(default)]
    pub(super) namespace: Option<Sp<String>>,
    #[serde(default)]
    pub(super) storage: Option<RawStorage>,
    #[serde(default)]
    pub(super) storage_class: Option<String>,
    #[serde(default)]
    pub(super) tls: Option<Sp<RawTls>>,
    #[serde(default)]
    pub(super) chart: Option<Sp<String>>,
    #[serde(default)]
    pub(super) manifests: Option<Sp<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawStorage {
    #[serde(default)]
    pub(super) registry: Option<Sp<String>>,
    #[serde(default)]
    pub(super) job_service: Option<Sp<String>>,
    #[serde(default)]
    pub(super) database: Option<Sp<String>>,
    #[serde(default)]
    pub(super) redis: Option<Sp<String>>,
    #[serde(default)]
    pub(super) trivy: Option<Sp<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawTls {
    pub(super) cert_file: Sp<String>,
    pub(super) key_file: Sp<String>,
    #[serde(default)]
    pub(super) ca_file: Option<Sp<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawKubernetes {
    #[serde(default)]
    pub(super) distribution: Distribution,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawHardware {
    #[serde(default)]
    pub(super) nodes: Option<u32>,
    #[serde(default)]
    pub(super) cpus: Option<u32>,
    #[serde(default, rename = "memoryGiB")]
    pub(super) memory_gib: Option<u32>,
    #[serde(default, rename = "diskGiB")]
    pub(super) disk_gib: Option<u32>,
}

impl RawHarbor {
    pub(super) fn empty() -> RawHarbor {
        RawHarbor {
            url: None,
            project: None,
            admin_password_file: None,
            admin_password_env: None,
            admin_password: None,
            node_port: None,
            vip: None,
            namespace: None,
            storage: None,
            storage_class: None,
            tls: None,
            chart: None,
            manifests: None,
        }
    }
}
