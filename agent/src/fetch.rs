//! Reading a blob from a source registry (a thin bundle's left-out blob):
//! a `GET` by digest, ranged when only part of it is wanted, read piece by
//! piece within the idle bound and never past what was asked for.

use std::time::Duration;

use bytes::Bytes;
use edgeiso_bundle::Digest;
use edgeiso_contract::printable::escape;
use reqwest::{Response, StatusCode};

use crate::auth;
use crate::registry::{RegistryClient, RegistryError};

impl RegistryClient {
    /// Bytes `[from, to)` of blob `digest` of `repo` (whose size is
    /// `size`), to be read with [`BlobBody::next`]. Asked for with a `Range`
    /// unless the whole blob is wanted; a registry that ignores the range
    /// (200) is read from its start and the bytes before `from` dropped.
    /// Redirects (to a CDN or object store) are followed without the
    /// credentials when they leave the registry's host.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        from: u64,
        to: u64,
        size: u64,
    ) -> Result<BlobBody, RegistryError> {
        let url = self.v2(&format!("{repo}/blobs/{digest}"));
        let what = format!("GET {} {repo} blob {digest}", self.url);
        let whole = from == 0 && to == size;
        let range = format!("bytes={from}-{}", to.saturating_sub(1));
        let resp = self
            .send(&what, &[auth::pull_scope(repo)], &|c| {
                let rb = c.get(url.clone());
                if whole {
                    rb
                } else {
                    rb.header(reqwest::header::RANGE, range.as_str())
                }
            })
            .await?;
        let skip = match resp.status() {
            StatusCode::OK => from,
            StatusCode::PARTIAL_CONTENT if !whole => {
                let served = resp.headers().get(reqwest::header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
                let start = served
                    .and_then(|r| r.trim().strip_prefix("bytes "))
                    .and_then(|r| r.split_once('-'))
                    .and_then(|(a, _)| a.trim().parse::<u64>().ok());
                if start != Some(from) {
                    return Err(RegistryError::Protocol {
                        what,
                        message: format!(
                            "asked for bytes from {from}, the answer's Content-Range is {}",
                            escape(served.unwrap_or("missing"))
                        ),
                    });
                }
                0
            }
            _ => return Err(self.status_error(&what, resp).await),
        };
        // The whole answer within the bound an upload of as many bytes gets
        // (a source trickling a byte a second never trips the idle bound).
        let within = self.timeouts.answer_within(skip + to - from);
        let deadline = tokio::time::Instant::now() + within;
        Ok(BlobBody { resp, what, skip, remaining: to - from, idle: self.timeouts.idle_read, deadline, within })
    }
}

/// A blob's bytes as a source registry sends them: exactly the range asked
/// for, each piece within the idle bound and all of them within the answer
/// bound of as many bytes, or an error (an answer that ends early, goes
/// silent or trickles is one).
pub struct BlobBody {
    resp: Response,
    what: String,
    /// Bytes still to drop (a registry that ignored the range).
    skip: u64,
    /// Bytes still to give.
    remaining: u64,
    idle: Duration,
    deadline: tokio::time::Instant,
    within: Duration,
}

impl BlobBody {
    /// The next piece, `None` once the range is given whole.
    pub async fn next(&mut self) -> Result<Option<Bytes>, RegistryError> {
        while self.remaining > 0 {
            let left = self.deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(RegistryError::Transport {
                    what: self.what.clone(),
                    message: format!(
                        "{} bytes still to come after {}: slower than {} KiB/s",
                        self.remaining,
                        humantime::format_duration(self.within),
                        crate::registry::MIN_UPLOAD_RATE >> 10
                    ),
                });
            }
            let piece = match tokio::time::timeout(self.idle.min(left), self.resp.chunk()).await {
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) => {
                    return Err(RegistryError::Transport {
                        what: self.what.clone(),
                        message: format!("the answer ended {} bytes short", self.remaining),
                    })
                }
                Ok(Err(e)) => return Err(RegistryClient::transport_error(&self.what, &e)),
                Err(_) => {
                    return Err(RegistryError::Transport {
                        what: self.what.clone(),
                        message: format!("no data for {}", humantime::format_duration(self.idle.min(left))),
                    })
                }
            };
            let mut piece = piece;
            if self.skip > 0 {
                let n = self.skip.min(piece.len() as u64);
                self.skip -= n;
                piece = piece.slice(n as usize..);
            }
            if piece.is_empty() {
                continue;
            }
            // Never more than asked for: the rest of an answer is not read.
            let n = self.remaining.min(piece.len() as u64);
            self.remaining -= n;
            return Ok(Some(piece.slice(..n as usize)));
        }
        Ok(None)
    }
}
