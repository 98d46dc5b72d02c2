//! Image references, normalized the way docker does, and the one function that
//! maps a source reference to its place in the site's Harbor.
//!
//! The mapping lives here, in the crate both the agent (which pushes) and the
//! renderer (which writes mirror configuration) depend on, so the two can never
//! disagree about where an image went.

use std::fmt;
use std::str::FromStr;

use edgeiso_contract::printable::{escape, first_control};

/// A fully normalized image reference: `nginx` becomes `docker.io/library/nginx:latest`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    normalized: String,
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// The reference is quoted escaped: it may come from a bundle or an import
/// input, and reach a terminal.
#[derive(Debug, thiserror::Error)]
#[error("`{}` is not a valid image reference: {reason}", escape(.reference))]
pub struct BadReference {
    pub reference: String,
    pub reason: String,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, BadReference> {
        let bad = |reason: String| BadReference { reference: s.to_owned(), reason };
        if let Some(c) = first_control(s) {
            return Err(bad(format!("it contains the control character {}", c.escape_unicode())));
        }
        if s.trim() != s || s.is_empty() {
            return Err(bad("empty, or surrounded by white space".into()));
        }
        let parts = grammar::split(s).map_err(|why| bad(why.into()))?;
        if let Some(d) = parts.digest {
            d.parse::<crate::Digest>().map_err(|e| bad(e.to_string()))?;
        }
        let (registry, repository) = grammar::split_domain(parts.name);
        // docker refuses upper case in repository paths; so do registries.
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("repository names must be lower case".into()));
        }
        let tag = parts.tag.map(str::to_owned);
        let digest = parts.digest.map(str::to_owned);
        // docker's rule: no tag and no digest means `latest`.
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_owned()) } else { tag };
        let mut normalized = format!("{registry}/{repository}");
        if let Some(t) = &tag {
            normalized.push(':');
            normalized.push_str(t);
        }
        if let Some(d) = &digest {
            normalized.push('@');
            normalized.push_str(d);
        }
        Ok(ImageRef { normalized, registry, repository, tag, digest })
    }

    /// Registry host, with port if any (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }
    /// Repository path inside the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
    pub fn as_str(&self) -> &str {
        &self.normalized
    }
    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
    /// The same image pinned to `digest` (the tag is kept for readability).
    pub fn pinned(&self, digest: &crate::Digest) -> ImageRef {
        let mut r = self.clone();
        r.digest = Some(digest.to_string());
        r.normalized =
            format!("{}{}@{}", self.name(), self.tag.as_deref().map(|t| format!(":{t}")).unwrap_or_default(), digest);
        r
    }
}

impl FromStr for ImageRef {
    type Err = BadReference;
    fn from_str(s: &str) -> Result<Self, BadReference> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({})", self.normalized)
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.normalized)
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a source image lives in the site registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    /// `spectro-images/docker.io/library/nginx`
    pub repository: String,
    /// The tag to push last, if the source reference had one.
    pub tag: Option<String>,
}

/// The path prefix of every image mirrored from `registry` inside `project`:
/// `spectro-images/docker.io`, or `spectro-images/127.0.0.1_5000` (a `:` is not
/// allowed in a repository path component, so it becomes `_`).
pub fn harbor_prefix(project: &str, registry: &str) -> String {
    // Host names are case-insensitive; repository paths must be lower case.
    format!("{project}/{}", registry.to_ascii_lowercase().replace(':', "_"))
}

/// Map a source reference to its repository in the site Harbor, as Palette
/// documents it: `<project>/<source host>/<source path>`, keeping the tag.
pub fn harbor_target(project: &str, source: &ImageRef) -> TargetRef {
    TargetRef {
        repository: format!("{}/{}", harbor_prefix(project, source.registry()), source.repository()),
        tag: source.tag().map(str::to_owned),
    }
}

/// The distribution reference grammar (`distribution/reference`'s
/// `regexp.go` and `normalize.go`), by hand: the regex oci-spec compiles for
/// it (its tag rule uses Unicode `\w`, 128 times over) costs about 18 MiB
/// the first time it runs, most of the agent's memory budget (decision 0010).
/// `\w` is ASCII here, as in Go. A differential test holds this to oci-spec's
/// answers (oci-spec is only a dev-dependency).
mod grammar {
    /// `name[:tag][@digest]`, each part checked.
    pub struct Parts<'a> {
        pub name: &'a str,
        pub tag: Option<&'a str>,
        pub digest: Option<&'a str>,
    }

    /// The longest repository path oci-spec accepts.
    const NAME_TOTAL_LENGTH_MAX: usize = 255;

    pub fn split(s: &str) -> Result<Parts<'_>, &'static str> {
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        // A tag follows the last `:` after the last `/` (a `:` before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if name.is_empty() {
            return Err("no repository name");
        }
        check_name(name)?;
        if split_domain(name).1.len() > NAME_TOTAL_LENGTH_MAX {
            return Err("repository name longer than 255 characters");
        }
        if let Some(t) = tag {
            check_tag(t)?;
        }
        if let Some(d) = digest {
            check_digest(d)?;
        }
        Ok(Parts { name, tag, digest })
    }

    /// `[domain/]path`, as the grammar reads it: every component a path
    /// component, or the first a domain and the rest path components.
    fn check_name(name: &str) -> Result<(), &'static str> {
        let all_path = |p: &str| p.split('/').try_for_each(check_path_component);
        match name.split_once('/') {
            Some((first, rest)) if check_domain(first).is_ok() && all_path(rest).is_ok() => Ok(()),
            // A registry with a port the grammar allows but no connection can use.
            Some((first, _)) if first.contains(':') && check_domain(first) == Err(BAD_PORT_NUMBER) => {
                Err(BAD_PORT_NUMBER)
            }
            _ => all_path(name),
        }
    }

    /// docker's rule for a first component that names a registry.
    fn looks_like_domain(first: &str) -> bool {
        first.contains(['.', ':']) || first == "localhost"
    }

    const BAD_PORT_NUMBER: &str = "invalid registry port (1 to 65535)";

    /// `host[:port]`, host being dot-separated `[a-zA-Z0-9]` labels with
    /// inner `-`.
    fn check_domain(d: &str) -> Result<(), &'static str> {
        let (host, port) = match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err("invalid registry host");
        }
        if let Some(p) = port {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err("invalid registry port");
            }
            // Stricter than the grammar: no TCP connection goes to port 0 or past 65535.
            if !p.parse::<u16>().is_ok_and(|n| n != 0) {
                return Err(BAD_PORT_NUMBER);
            }
        }
        Ok(())
    }

    /// `[a-z0-9]+` joined by `.`, `_`, `__` or any number of `-`.
    fn check_path_component(c: &str) -> Result<(), &'static str> {
        const BAD: &str = "invalid repository path (lower-case letters and digits joined by `.`, `_`, `__` or `-`)";
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return Err(BAD);
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
            if !ok {
                return Err(BAD);
            }
        }
        Ok(())
    }

    /// `[\w][\w.-]{0,127}`, `\w` being `[A-Za-z0-9_]`.
    fn check_tag(t: &str) -> Result<(), &'static str> {
        let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
        let b = t.as_bytes();
        if b.is_empty() || b.len() > 128 || !word(b[0]) || !b.iter().all(|&x| word(x) || x == b'.' || x == b'-') {
            return Err("invalid tag (up to 128 of [A-Za-z0-9_.-], not starting with . or -)");
        }
        Ok(())
    }

    /// `algorithm:hex`: algorithm components `[A-Za-z][A-Za-z0-9]*` joined
    /// by one of `-_+.`, at least 32 hex digits.
    fn check_digest(d: &str) -> Result<(), &'static str> {
        const BAD: &str = "invalid digest (algorithm:hex)";
        let (alg, hex) = d.split_once(':').ok_or(BAD)?;
        let alg_ok = alg.split(['-', '_', '+', '.']).all(|c| {
            c.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) && c.bytes().all(|x| x.is_ascii_alphanumeric())
        });
        if !alg_ok || hex.len() < 32 || !hex.bytes().all(|x| x.is_ascii_hexdigit()) {
            return Err(BAD);
        }
        Ok(())
    }

    /// The registry and repository of a checked name, docker's way:
    /// `nginx` is `docker.io/library/nginx`, `index.docker.io` is `docker.io`.
    pub fn split_domain(name: &str) -> (String, String) {
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if looks_like_domain(first) => (first, rest),
            _ => ("docker.io", name),
        };
        let domain = if domain == "index.docker.io" { "docker.io" } else { domain };
        let path =
            if domain == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path.to_owned() };
        (domain.to_owned(), path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// From a bundle, an import's annotations or a spec: a reference with a
    /// control character is refused, and the error shows it escaped.
    #[test]
    fn control_characters_are_refused_and_quoted_escaped() {
        for bad in ["docker.io/x/app:1\u{1b}[31m", "app\u{9b}2J", "app:1\r", "app\u{7f}", "\u{1b}]0;t\u{7}app"] {
            let e = ImageRef::parse(bad).unwrap_err();
            let shown = e.to_string();
            assert!(shown.contains("control character"), "{shown}");
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
            let json = format!("\"{}\"", bad.escape_default());
            let e = serde_json::from_str::<ImageRef>(&json).unwrap_err().to_string();
            assert!(!e.chars().any(char::is_control), "{e:?}");
        }
    }

    #[test]
    fn normalizes_like_docker() {
        for (input, want) in [
            ("nginx", "docker.io/library/nginx:latest"),
            ("nginx:1.25", "docker.io/library/nginx:1.25"),
            ("docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25"),
            ("bitnami/redis", "docker.io/bitnami/redis:latest"),
            (
                "gcr.io/spectro-images-public/kube-vip/kube-vip:v0.6.3",
                "gcr.io/spectro-images-public/kube-vip/kube-vip:v0.6.3",
            ),
            ("localhost/app", "localhost/app:latest"),
            ("127.0.0.1:5000/team/app:2", "127.0.0.1:5000/team/app:2"),
        ] {
            assert_eq!(ImageRef::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn digest_only_reference_has_no_tag() {
        let r = ImageRef::parse(&format!("127.0.0.1:5000/team/app@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.as_str(), format!("127.0.0.1:5000/team/app@{D}"));
    }

    #[test]
    fn rejects_garbage_naming_it() {
        for bad in ["", " nginx", "UPPER/case", "nginx@sha256:short", "a//b"] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
    }

    /// The hand-written grammar against oci-spec's regex, on references of
    /// every shape (ASCII: Go's `\\w` is ASCII, oci-spec's is Unicode).
    #[test]
    fn the_grammar_agrees_with_oci_spec() {
        let hex = "0123456789abcdef".repeat(4);
        let mut cases: Vec<String> = [
            "nginx",
            "nginx:1.25",
            "library/nginx",
            "docker.io/nginx",
            "index.docker.io/library/nginx:1",
            "localhost/app",
            "localhost:5000/app",
            "127.0.0.1:5000/team/app:2",
            "a.b/c",
            "a.b:1/c/d/e:f",
            "gcr.io/spectro-images-public/kube-vip/kube-vip:v0.6.3",
            "UPPER/case",
            "host/UPPER",
            "Host.io/x",
            "a__b",
            "a___b",
            "a--b",
            "a-b",
            "a.b",
            "a..b",
            "a._b",
            "-a",
            "a-",
            "a/",
            "/a",
            "a//b",
            ":tag",
            "a:",
            "a:-x",
            "a:_x",
            "a:.x",
            "a:x.y-z_W",
            "a@sha256:",
            "a@sha256:abc",
            "a@md5:0123",
            "a:b:c",
            "a:b/c",
            "host:port/x",
            "host:123/x",
            "host-/x",
            "-host.io/x",
            "ho_st.io/x",
            "h.io:1:2/x",
            "a@b@c",
            "a b",
            "é",
            "a/é",
            "a:é",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        cases.push(format!("nginx@sha256:{hex}"));
        cases.push(format!("nginx:1@sha256:{hex}"));
        cases.push(format!("a@sha256:{}", &hex[..63]));
        cases.push(format!("a:{}", "t".repeat(128)));
        cases.push(format!("a:{}", "t".repeat(129)));
        cases.push(format!("h.io/{}", "a".repeat(255)));
        cases.push(format!("h.io/{}", "a".repeat(256)));
        cases.push("a".repeat(248));
        let (mut both_ok, mut both_err) = (0, 0);
        for c in &cases {
            let theirs = c.parse::<oci_spec::distribution::Reference>();
            let ours = ImageRef::parse(c);
            match (&theirs, &ours) {
                (Ok(t), Ok(o)) => {
                    let registry =
                        if t.resolve_registry() == "index.docker.io" { "docker.io" } else { t.resolve_registry() };
                    assert_eq!(
                        (registry, t.repository(), t.tag(), t.digest()),
                        (o.registry(), o.repository(), o.tag(), o.digest()),
                        "{c}"
                    );
                    both_ok += 1;
                }
                // Upper case in a path and non-ASCII tags: refused here only.
                (Ok(t), Err(_)) if t.repository().bytes().any(|b| b.is_ascii_uppercase()) || !c.is_ascii() => {}
                (Err(_), Err(_)) => both_err += 1,
                _ => panic!("{c}: oci-spec {theirs:?}, ours {ours:?}"),
            }
        }
        assert!(both_ok >= 20 && both_err >= 20, "{both_ok} accepted and {both_err} refused by both");
    }

    #[test]
    fn registry_ports_are_1_to_65535() {
        for bad in ["h.io:0/x", "127.0.0.1:00/x", "h.io:65536/x", "h.io:99999999999/x"] {
            let e = ImageRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains("port"), "{bad}: {e}");
        }
        for good in ["h.io:1/x", "127.0.0.1:65535/x", "localhost:5000/x"] {
            assert!(ImageRef::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn harbor_mapping_matches_palette() {
        let t = harbor_target("spectro-images", &"docker.io/library/nginx:1.25".parse().unwrap());
        assert_eq!(t.repository, "spectro-images/docker.io/library/nginx");
        assert_eq!(t.tag.as_deref(), Some("1.25"));
        let t = harbor_target("spectro-images", &format!("127.0.0.1:5000/team/app@{D}").parse().unwrap());
        assert_eq!(t.repository, "spectro-images/127.0.0.1_5000/team/app");
        assert_eq!(t.tag, None);
    }
}
