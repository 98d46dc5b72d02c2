//! Bundle signatures: ECDSA P-256 over SHA-256 of the exact bytes of
//! `bundle.json`, which pins the sha256 of every other member. The signature
//! file is `<bundle>.sig` beside the bundle (for split bundles beside the
//! first part, named for the bundle: `NAME.tar.sig`), holding the base64 of
//! the DER-encoded signature: what `cosign sign-blob` writes and `cosign
//! verify-blob --key` and `openssl dgst -sha256 -verify` (after `base64 -d`)
//! accept. See `docs/bundle-format.md` and decision 0015.
//!
//! Nothing here knows what kind of bundle it signs: [`SigningKey::sign`] and
//! [`VerifyingKey::verify`] take the bytes of a `bundle.json`, so thin and
//! delta bundles are signed the same way.
//!
//! Keys are PEM files as `openssl genpkey -algorithm EC -pkeyopt
//! ec_paramgen_curve:P-256` writes them: PKCS#8 (`PRIVATE KEY`), or encrypted
//! PKCS#8 (`ENCRYPTED PRIVATE KEY`, PBES2, with `-aes-256-cbc`), and the
//! public key as SubjectPublicKeyInfo (`PUBLIC KEY`, `openssl pkey -pubout`).
//! The cryptography is ring's (the workspace's one crypto stack, decision
//! 0009); the `pkcs8` crate only parses and decrypts key files.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use pkcs8::der::pem;
use pkcs8::spki::SubjectPublicKeyInfoRef;
use pkcs8::{EncryptedPrivateKeyInfo, ObjectIdentifier};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING};

use crate::parts::part_base;

/// Appended to the bundle's name (the tar, not a part).
pub const SIGNATURE_SUFFIX: &str = ".sig";

/// A key file larger than this is not a key.
const MAX_KEY_BYTES: u64 = 64 << 10;
/// A P-256 DER signature is at most 72 bytes (96 in base64); anything much
/// larger is not a signature.
const MAX_SIGNATURE_BYTES: u64 = 4 << 10;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A key or signature file could not be read (the message names it).
    // Not a `source`: the message carries it, and a chain printed with
    // `{:#}` would say it twice.
    #[error("{0}")]
    Read(std::io::Error),
    #[error("key {path}: {reason}", path = path.display())]
    Key { path: PathBuf, reason: String },
    #[error("key {path} is encrypted and no password was given", path = path.display())]
    PasswordNeeded { path: PathBuf },
    #[error("key {path}: cannot decrypt it (wrong password, or a damaged key)", path = path.display())]
    WrongPassword { path: PathBuf },
    #[error("unsigned: no signature {path}", path = path.display())]
    Unsigned { path: PathBuf },
    #[error("signature {path} is malformed: {reason}", path = path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("signature {path} does not verify with the trusted key {key}: signed by another key, or bundle.json changed after signing", path = path.display(), key = key.display())]
    Mismatch { path: PathBuf, key: PathBuf },
    #[error("signing failed (the system's random source failed)")]
    Sign,
}

/// Where the signature of the bundle whose first file is `first` lives:
/// `NAME.tar` -> `NAME.tar.sig`, `NAME.tar.part000` -> `NAME.tar.sig`.
pub fn signature_path(first: &Path) -> PathBuf {
    let mut s = part_base(first).unwrap_or_else(|| first.to_path_buf()).into_os_string();
    s.push(SIGNATURE_SUFFIX);
    PathBuf::from(s)
}

/// A private key that signs bundles.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Read a PKCS#8 PEM key; `password` decrypts an encrypted one.
    pub fn read(path: &Path, password: Option<&[u8]>) -> Result<SigningKey, SignatureError> {
        // The key is secret: its text and decoded bytes live in zeroizing
        // buffers only.
        let text = pkcs8::der::zeroize::Zeroizing::new(read_bounded(path, MAX_KEY_BYTES)?);
        let bad = |reason: String| SignatureError::Key { path: path.to_owned(), reason };
        let text = std::str::from_utf8(&text).map_err(|_| bad("not a PEM file (not text)".into()))?;
        let (label, der) = pkcs8::SecretDocument::from_pem(text).map_err(|e| bad(format!("not a PEM file ({e})")))?;
        let plain = match label {
            "PRIVATE KEY" => der,
            "ENCRYPTED PRIVATE KEY" => {
                let password = password.ok_or_else(|| SignatureError::PasswordNeeded { path: path.to_owned() })?;
                let info = EncryptedPrivateKeyInfo::try_from(der.as_bytes())
                    .map_err(|e| bad(format!("not an encrypted PKCS#8 key ({e})")))?;
                info.decrypt(password).map_err(|e| {
                    use pkcs8::pkcs5::Error as P5;
                    match e {
                        pkcs8::Error::EncryptedPrivateKey(
                            P5::UnsupportedAlgorithm { .. }
                            | P5::NoPbes1CryptSupport
                            | P5::AlgorithmParametersInvalid { .. },
                        ) => bad(format!(
                            "encrypted in a way edgeiso does not read ({e}); re-encrypt it with \
                             `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8`"
                        )),
                        // A wrong password shows as bad padding (pkcs5 calls
                        // it EncryptFailed), or (1 in 256) as padding that
                        // happens to fit over garbage that is not DER.
                        _ => SignatureError::WrongPassword { path: path.to_owned() },
                    }
                })?
            }
            "EC PRIVATE KEY" => {
                return Err(bad("a SEC1 key; convert it to PKCS#8 with `openssl pkcs8 -topk8 -in KEY -out KEY.p8` \
                     (add -nocrypt for no password)"
                    .into()))
            }
            other => return Err(bad(format!("a PEM {other:?}, not a PKCS#8 private key (PRIVATE KEY)"))),
        };
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, plain.as_bytes(), &rng)
            .map_err(|e| bad(format!("not an ECDSA P-256 key with its public key ({e})")))?;
        Ok(SigningKey { pair, rng })
    }

    /// The signature file's text: base64 of the DER signature of `message`
    /// (the bytes of a `bundle.json`), no line break.
    pub fn sign(&self, message: &[u8]) -> Result<String, SignatureError> {
        let sig = self.pair.sign(&self.rng, message).map_err(|_| SignatureError::Sign)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sig.as_ref()))
    }

    /// The uncompressed public point (to compare with a [`VerifyingKey`]).
    pub fn public_point(&self) -> &[u8] {
        use ring::signature::KeyPair as _;
        self.pair.public_key().as_ref()
    }
}

/// A public key that bundles must be signed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    path: PathBuf,
    /// The uncompressed P-256 point from the SubjectPublicKeyInfo.
    point: Vec<u8>,
}

impl VerifyingKey {
    /// Read a `PUBLIC KEY` PEM (SubjectPublicKeyInfo of an EC P-256 key).
    pub fn read(path: &Path) -> Result<VerifyingKey, SignatureError> {
        VerifyingKey::from_pem(path, &read_key_file(path)?)
    }

    /// Parse `text`, naming the key `path` in messages.
    pub fn from_pem(path: &Path, text: &[u8]) -> Result<VerifyingKey, SignatureError> {
        let bad = |reason: String| SignatureError::Key { path: path.to_owned(), reason };
        let (label, der) = pem::decode_vec(text).map_err(|e| bad(format!("not a PEM file ({e})")))?;
        if label != "PUBLIC KEY" {
            return Err(bad(format!(
                "a PEM {label:?}, not a public key (PUBLIC KEY; `openssl pkey -in KEY -pubout` writes one)"
            )));
        }
        let spki =
            SubjectPublicKeyInfoRef::try_from(der.as_slice()).map_err(|e| bad(format!("not a public key ({e})")))?;
        let curve = spki.algorithm.parameters_oid().ok();
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY || curve != Some(PRIME256V1) {
            return Err(bad(format!(
                "not an ECDSA P-256 public key (algorithm {}, parameters {})",
                spki.algorithm.oid,
                curve.map_or_else(|| "none".to_owned(), |c| c.to_string())
            )));
        }
        let point =
            spki.subject_public_key.as_bytes().ok_or_else(|| bad("the key's bit string is not whole bytes".into()))?;
        // Uncompressed point: 0x04, then X and Y of 32 bytes each. ring
        // checks it lies on the curve when verifying.
        if point.len() != 65 || point[0] != 4 {
            return Err(bad("the P-256 point is not in uncompressed form".into()));
        }
        Ok(VerifyingKey { path: path.to_owned(), point: point.to_vec() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn point(&self) -> &[u8] {
        &self.point
    }

    /// Check `signature_text` (as read from the signature file `sig_path`)
    /// over `message` (the bytes of a `bundle.json`).
    pub fn verify(&self, message: &[u8], sig_path: &Path, signature_text: &[u8]) -> Result<(), SignatureError> {
        let malformed = |reason: String| SignatureError::Malformed { path: sig_path.to_owned(), reason };
        // cosign and `base64` wrap or end the text with line breaks.
        let compact: Vec<u8> = signature_text.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        if compact.is_empty() {
            return Err(malformed("empty".into()));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(&compact)
            .map_err(|e| malformed(format!("not base64 ({e})")))?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, &der)
            .map_err(|_| SignatureError::Mismatch { path: sig_path.to_owned(), key: self.path.clone() })
    }

    /// Check the signature beside the bundle whose first file is `first`
    /// over `bundle_json` (its bytes as stored).
    pub fn verify_bundle(&self, first: &Path, bundle_json: &[u8]) -> Result<(), SignatureError> {
        let sig_path = signature_path(first);
        let text = match read_bounded(&sig_path, MAX_SIGNATURE_BYTES) {
            Err(SignatureError::Read(error)) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(SignatureError::Unsigned { path: sig_path })
            }
            other => other?,
        };
        self.verify(bundle_json, &sig_path, &text)
    }
}

/// The bytes of a key file (a regular file, at most 64 KiB), to check with
/// [`VerifyingKey::from_pem`] and copy as read.
pub fn read_key_file(path: &Path) -> Result<Vec<u8>, SignatureError> {
    read_bounded(path, MAX_KEY_BYTES)
}

/// Read a small input file whole: a regular file, at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, SignatureError> {
    // Its errors name the file already.
    edgeiso_contract::fs::read_small_file(path, max).map_err(SignatureError::Read)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh key pair as PEM files in `dir`: (private, public).
    fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        use ring::signature::KeyPair as _;
        let rng = SystemRandom::new();
        let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der.as_ref(), &rng).unwrap();
        // SubjectPublicKeyInfo of id-ecPublicKey / prime256v1, then the point.
        let mut spki = hex_bytes("3059301306072a8648ce3d020106082a8648ce3d030107034200");
        spki.extend_from_slice(pair.public_key().as_ref());
        let lf = pkcs8::der::pem::LineEnding::LF;
        let (k, p) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.pub")));
        std::fs::write(&k, pem::encode_string("PRIVATE KEY", lf, der.as_ref()).unwrap()).unwrap();
        std::fs::write(&p, pem::encode_string("PUBLIC KEY", lf, &spki).unwrap()).unwrap();
        (k, p)
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn signs_and_verifies_and_refuses_each_way_a_signature_can_be_wrong() {
        let d = tempfile::tempdir().unwrap();
        let (k, p) = keypair(d.path(), "ours");
        let (other, _) = keypair(d.path(), "theirs");
        let key = SigningKey::read(&k, None).unwrap();
        let public = VerifyingKey::read(&p).unwrap();
        assert_eq!(key.public_point(), public.point());
        let json = b"{\"formatVersion\": 1}\n";
        let sig = key.sign(json).unwrap();
        let at = d.path().join("b.tar.sig");
        public.verify(json, &at, sig.as_bytes()).unwrap();
        // Wrapped and newline-terminated, as base64(1) writes it.
        let wrapped = format!("{}\n{}\n", &sig[..40], &sig[40..]);
        public.verify(json, &at, wrapped.as_bytes()).unwrap();
        let changed = matches!(public.verify(b"{}", &at, sig.as_bytes()), Err(SignatureError::Mismatch { .. }));
        assert!(changed, "a changed message");
        let theirs = SigningKey::read(&other, None).unwrap().sign(json).unwrap();
        assert!(matches!(public.verify(json, &at, theirs.as_bytes()), Err(SignatureError::Mismatch { .. })));
        for bad in ["", "  \n", "not base64!"] {
            let e = public.verify(json, &at, bad.as_bytes()).unwrap_err();
            assert!(matches!(e, SignatureError::Malformed { .. }), "{bad:?}: {e}");
            assert!(e.to_string().contains("b.tar.sig"), "{e}");
        }
        // The bundle's signature file: absent is unsigned, named.
        let first = d.path().join("b.tar.part000");
        let e = public.verify_bundle(&first, json).unwrap_err();
        assert!(matches!(e, SignatureError::Unsigned { .. }) && e.to_string().contains("b.tar.sig"), "{e}");
        std::fs::write(&at, &sig).unwrap();
        public.verify_bundle(&first, json).unwrap();
    }

    #[test]
    fn keys_are_read_bounded_from_regular_files_and_checked_for_kind() {
        let d = tempfile::tempdir().unwrap();
        let (k, p) = keypair(d.path(), "k");
        let e = VerifyingKey::read(&k).unwrap_err().to_string();
        assert!(e.contains("k.pem") && e.contains("not a public key"), "{e}");
        let e = SigningKey::read(&p, None).unwrap_err().to_string();
        assert!(e.contains("k.pub") && e.contains("not a PKCS#8 private key"), "{e}");
        let big = d.path().join("big.pem");
        std::fs::write(&big, vec![b'a'; (MAX_KEY_BYTES + 1) as usize]).unwrap();
        let e = VerifyingKey::read(&big).unwrap_err().to_string();
        assert!(e.contains("big.pem") && e.contains("larger than"), "{e}");
        let e = VerifyingKey::read(d.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let sec1 = d.path().join("sec1.pem");
        std::fs::write(&sec1, "-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n").unwrap();
        let e = SigningKey::read(&sec1, None).unwrap_err().to_string();
        assert!(e.contains("openssl pkcs8 -topk8"), "{e}");
    }

    #[test]
    fn the_signature_is_named_for_the_bundle_not_its_part() {
        assert_eq!(signature_path(Path::new("/b/content-x.tar")), Path::new("/b/content-x.tar.sig"));
        assert_eq!(signature_path(Path::new("/b/content-x.tar.part000")), Path::new("/b/content-x.tar.sig"));
    }
}
