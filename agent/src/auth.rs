//! Registry credentials and the two auth schemes registries use on `/v2/`:
//! Basic, and the Bearer token flow (`WWW-Authenticate: Bearer realm=...,
//! service=..., scope=...`) that Harbor and Docker Hub use. Credentials and
//! tokens never appear in `Debug` output, logs or errors.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;

#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: String, password: String) -> Credentials {
        Credentials { username, password }
    }
    pub fn username(&self) -> &str {
        &self.username
    }
    pub fn password(&self) -> &str {
        &self.password
    }
    /// The value of an `Authorization: Basic ...` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// Parse the first challenge of a `WWW-Authenticate` header value. Parameter
/// values may be quoted and contain commas (`scope="repository:a:pull,push"`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n)
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &q[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.insert(key, value);
        s = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

/// The token endpoint's answer (Docker uses `token`, OAuth2 `access_token`).
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// Tokens are renewed after a day at the latest, whatever they claim.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct Token {
    pub value: String,
    pub expires: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why a token endpoint's answer gave no token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("unreadable token response: {}", edgeiso_contract::printable::escape(.0))]
    Unreadable(String),
    #[error("token response without a token")]
    NoToken,
}

impl TokenResponse {
    /// The token a token endpoint's answer body carries.
    pub fn parse(body: &[u8]) -> Result<Token, TokenError> {
        let answer: TokenResponse = serde_json::from_slice(body).map_err(|e| TokenError::Unreadable(e.to_string()))?;
        answer.into_token().ok_or(TokenError::NoToken)
    }

    pub fn into_token(self) -> Option<Token> {
        let value = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        // The spec's default lifetime is 60 s; renew a little early. A
        // registry may claim any lifetime (u64::MAX would overflow Instant):
        // a day is more than a load needs.
        let life = Duration::from_secs(self.expires_in.unwrap_or(60).clamp(10, MAX_TOKEN_LIFETIME.as_secs()));
        let now = Instant::now();
        let expires = now.checked_add(life - Duration::from_secs(5)).unwrap_or(now);
        Some(Token { value, expires })
    }
}

/// What the registry asked for, learnt from its first 401.
#[derive(Debug, Clone, Default)]
pub enum Scheme {
    /// Not asked yet: send nothing (anonymous registries never challenge).
    #[default]
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// `repository:NAME:pull,push`
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// `repository:NAME:pull`
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_harbor_and_docker_challenges() {
        let h = r#"Bearer realm="https://10.0.0.5:30003/service/token",service="harbor-registry",scope="repository:spectro-images/docker.io/library/nginx:pull,push""#;
        assert_eq!(
            parse_challenge(h),
            Some(Challenge::Bearer {
                realm: "https://10.0.0.5:30003/service/token".into(),
                service: Some("harbor-registry".into()),
                scope: Some("repository:spectro-images/docker.io/library/nginx:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(r#"bearer realm="r""#),
            Some(Challenge::Bearer { realm: "r".into(), service: None, scope: None })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None, "no realm");
    }

    #[test]
    fn any_token_lifetime_is_clamped_not_overflowed() {
        let tok = |expires_in| TokenResponse { token: Some("t".into()), access_token: None, expires_in }.into_token();
        let now = Instant::now();
        let huge = tok(Some(u64::MAX)).unwrap();
        assert!(huge.expires <= now + MAX_TOKEN_LIFETIME + Duration::from_secs(1));
        assert!(huge.expires > now + MAX_TOKEN_LIFETIME - Duration::from_secs(60));
        let zero = tok(Some(0)).unwrap();
        assert!(zero.expires >= now + Duration::from_secs(4), "at least 10 s, renewed 5 s early");
        assert!(tok(None).unwrap().expires <= Instant::now() + Duration::from_secs(55));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let c = Credentials::new("admin".into(), "Harbor12345".into());
        assert!(!format!("{c:?}").contains("Harbor12345"));
        assert_eq!(c.basic_header(), "Basic YWRtaW46SGFyYm9yMTIzNDU=");
        let t = TokenResponse { token: Some("tok".into()), access_token: None, expires_in: None }.into_token().unwrap();
        assert!(!format!("{t:?}").contains("tok"));
    }
}
