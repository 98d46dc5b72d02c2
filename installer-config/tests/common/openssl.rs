//! openssl as the outside judge of the certificates render makes or takes:
//! the one place the tests call it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `openssl ARGS`, its stdout; panics with its stderr when it fails.
pub fn openssl(args: &[&str]) -> String {
    let o = Command::new("openssl").args(args).output().expect("openssl");
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Check that `crt` chains to `ca` (and serves `hostname`, when given), and
/// return its subjectAltName text (`DNS:a, IP Address:1.2.3.4`).
pub fn verified_sans(ca: &Path, crt: &Path, hostname: Option<&str>) -> String {
    let (ca, crt) = (ca.to_str().unwrap(), crt.to_str().unwrap());
    let mut verify = vec!["verify"];
    if let Some(h) = hostname {
        verify.extend(["-verify_hostname", h]);
    }
    verify.extend(["-CAfile", ca, crt]);
    assert!(openssl(&verify).contains(": OK"));
    openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in", crt])
}

/// A CA (`ca.crt`) and a server certificate and key it signed (`tls.crt`,
/// `tls.key`) for `sans` (`DNS:x,IP:y`), made in `dir` the way a site's PKI
/// team would, with openssl.
pub fn make_server_cert(dir: &Path, sans: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut ca = vec!["req", "-x509", "-days", "30", "-subj", "/CN=site CA", "-keyout"];
    let (ca_key, ca_crt) = (p("ca.key"), p("ca.crt"));
    ca.extend([ca_key.as_str(), "-out", ca_crt.as_str()]);
    ca.extend(ec);
    openssl(&ca);
    let (key, csr, crt) = (p("tls.key"), p("tls.csr"), p("tls.crt"));
    let mut req = vec!["req", "-subj", "/CN=harbor", "-keyout", key.as_str(), "-out", csr.as_str()];
    req.extend(ec);
    openssl(&req);
    let ext = format!("subjectAltName={sans}");
    let ext_file = p("ext.cnf");
    std::fs::write(&ext_file, ext).unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_crt,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        &ext_file,
        "-out",
        &crt,
    ]);
    (dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key"))
}
