//! Harbor's TLS material: the spec's certificate and key, or a generated CA
//! and a server certificate whose SANs cover every name nodes use.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::RenderError;
use crate::spec::Spec;

/// The name Palette's Harbor certificate always carries.
pub const HARBOR_DNS_NAME: &str = "spectro.registry.local";

pub struct TlsMaterial {
    pub cert_pem: String,
    pub key_pem: String,
    /// What nodes and the agent trust.
    pub ca_pem: String,
    /// True when render made it (so its keys change on every render).
    pub generated: bool,
}

/// The SANs a generated certificate carries: every name Harbor serves
/// (`HarborSpec::served_names`), `spectro.registry.local` and the VIP
/// whatever deploys Harbor, and loopback, where the default url points.
pub fn sans(spec: &Spec) -> Vec<String> {
    let mut out = vec![HARBOR_DNS_NAME.to_owned()];
    let vip = spec.harbor.vip.map(|v| v.to_string());
    let served = spec.harbor.served_names();
    for s in vip.into_iter().chain(served).chain(["127.0.0.1".into(), "localhost".into()]) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

pub fn material(spec: &Spec) -> Result<TlsMaterial, RenderError> {
    if let Some(t) = &spec.harbor.tls {
        let read = read_pem;
        let cert_pem = read(&t.cert_file)?;
        let key_pem = read(&t.key_file)?;
        for (p, text, want) in [(&t.cert_file, &cert_pem, "CERTIFICATE"), (&t.key_file, &key_pem, "PRIVATE KEY")] {
            if !text.contains("-----BEGIN ") || !text.contains(want) {
                return Err(RenderError::Input { file: p.clone(), message: format!("not a PEM {want}") });
            }
        }
        let ca_pem = match &t.ca_file {
            Some(p) => read(p)?,
            None => cert_pem.clone(),
        };
        return Ok(TlsMaterial { cert_pem, key_pem, ca_pem, generated: false });
    }
    material_at(spec, source_date_epoch()?)
}

/// A PEM file the spec names, read with the spec's ceiling for PEM files.
pub(crate) fn read_pem(p: &std::path::Path) -> Result<String, RenderError> {
    let bytes =
        edgeiso_contract::fs::read_bounded(p, crate::spec::MAX_PEM_BYTES).map_err(|e| RenderError::read(p, e))?;
    String::from_utf8(bytes)
        .map_err(|_| RenderError::Input { file: p.to_owned(), message: "not PEM text (not UTF-8)".into() })
}

/// `SOURCE_DATE_EPOCH` (reproducible-builds.org), when set and not blank.
pub fn source_date_epoch() -> Result<Option<u64>, RenderError> {
    edgeiso_contract::epoch::source_date_epoch().map_err(|e| RenderError::Tls(e.to_string()))
}

/// Like `material`, with a generated certificate's validity counted from
/// `epoch` (seconds since 1970; `None`: now) instead of the clock. The keys
/// are random all the same: see `docs/render.md` on reproducible builds.
pub fn material_at(spec: &Spec, epoch: Option<u64>) -> Result<TlsMaterial, RenderError> {
    if spec.harbor.tls.is_some() {
        return material(spec);
    }
    let secs = epoch.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
    generate(&sans(spec), &format!("edgeiso {} Harbor CA", spec.name), HARBOR_DNS_NAME, secs)
}

/// The image-redirect webhook's own CA (the caBundle of its
/// MutatingWebhookConfiguration) and serving certificate, for `address` (the
/// host of the URL the API server calls) and loopback. Always generated:
/// nothing but the API server has to trust it.
pub fn webhook_material(spec: &Spec, address: &str, epoch: Option<u64>) -> Result<TlsMaterial, RenderError> {
    let secs = epoch.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
    let mut names = vec![address.to_owned()];
    for n in ["127.0.0.1", "localhost"] {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_owned());
        }
    }
    generate(&names, &format!("edgeiso {} webhook CA", spec.name), address, secs)
}

fn generate(sans: &[String], ca_cn: &str, server_cn: &str, epoch: u64) -> Result<TlsMaterial, RenderError> {
    let e = |what: &str, err: rcgen::Error| RenderError::Tls(format!("{what}: {err}"));
    let (y, m, d) = civil_from_days((epoch / 86_400) as i64);
    let not_before = rcgen::date_time_ymd(y, m, d) - rcgen_days(1);
    // Ten years: an edge site is not re-keyed often, and an expired registry
    // certificate stops every pull.
    let not_after = rcgen::date_time_ymd(y + 10, m, d.min(28));

    let ca_key = KeyPair::generate().map_err(|x| e("CA key", x))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|x| e("CA", x))?;
    ca.distinguished_name = dn(ca_cn);
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key).map_err(|x| e("CA", x))?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().map_err(|x| e("server key", x))?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|x| e("server", x))?;
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => s.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()
        .map_err(|x| e("SAN", x))?;
    params.distinguished_name = dn(server_cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params.signed_by(&key, &issuer).map_err(|x| e("server", x))?;
    Ok(TlsMaterial { cert_pem: cert.pem(), key_pem: key.serialize_pem(), ca_pem: ca_cert.pem(), generated: true })
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d.push(DnType::OrganizationName, "edgeiso");
    d
}

fn rcgen_days(n: i64) -> std::time::Duration {
    std::time::Duration::from_secs(n as u64 * 86_400)
}

/// The UTC date (proleptic Gregorian) `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    ((if m <= 2 { y + 1 } else { y }) as i32, m as u8, d as u8)
}
