//! A source registry that misbehaves while serving blobs: hostile input for
//! the agent's fetch of a thin bundle's blobs. `GET /v2/` answers 200; a
//! blob `GET` answers as the [`SourceMode`] says; anything else is 404. One
//! thread per connection; the listener ends when the server is dropped.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::hostile::{read_request, Seen};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceMode {
    /// The whole blob with 200 whatever `Range` asked for.
    IgnoresRange,
    /// The blob and then a mebibyte more, all under one Content-Length.
    Overlong,
    /// Garbage without end (chunked), never the blob.
    Endless,
    /// The headers, then one byte a second.
    Trickle,
    /// A redirect to an object store at this port of 127.0.0.1, its URL
    /// signed in the query as S3's are: [`SIGNATURE`].
    RedirectsTo(u16),
    /// Half the blob under the whole one's Content-Length, then the
    /// connection closed.
    ShortBody,
    /// The first answer for a blob over a mebibyte: its first kilobyte
    /// under the whole one's Content-Length, then the connection closed.
    /// Every other answer: as [`SourceMode::IgnoresRange`].
    DropsOnce,
}

/// The credential in a [`SourceMode::RedirectsTo`] URL: it must never be shown.
pub const SIGNATURE: &str = "s3cr3t-signature";

pub struct HostileSource {
    /// `127.0.0.1:PORT`
    pub host: String,
    /// The `Range` header of every blob GET (`None`: there was none).
    pub ranges: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
}

/// Whether a [`SourceMode::DropsOnce`] server has dropped its one answer.
type Dropped = Arc<AtomicBool>;

impl HostileSource {
    /// Serve `blobs` (by `sha256:…` digest) in `mode`.
    pub fn start(blobs: HashMap<String, Vec<u8>>, mode: SourceMode) -> HostileSource {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let blobs = Arc::new(blobs);
        let (st, seen) = (stop.clone(), ranges.clone());
        let dropped: Dropped = Arc::default();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, seen, blobs, dropped) = (st.clone(), seen.clone(), blobs.clone(), dropped.clone());
                std::thread::spawn(move || serve(conn, mode, &blobs, &st, &seen, &dropped));
            }
        });
        HostileSource { host, ranges, stop }
    }
}

impl Drop for HostileSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

fn serve(
    conn: TcpStream,
    mode: SourceMode,
    blobs: &HashMap<String, Vec<u8>>,
    stop: &AtomicBool,
    seen: &Mutex<Vec<Option<String>>>,
    dropped: &AtomicBool,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    while let Some(Seen { method, path, range, .. }) = read_request(&mut r) {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let digest = path.rsplit_once("/blobs/").map(|(_, d)| d.split('?').next().unwrap_or(d));
        let blob = digest.and_then(|d| blobs.get(d));
        let ok = match (method.as_str(), path.as_str(), blob) {
            ("GET", "/v2/", _) => w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").is_ok(),
            ("GET", _, Some(bytes)) => {
                seen.lock().unwrap().push(range);
                let mode = match mode {
                    SourceMode::DropsOnce if bytes.len() > 1 << 20 && !dropped.swap(true, Ordering::SeqCst) => {
                        SourceMode::DropsOnce
                    }
                    SourceMode::DropsOnce => SourceMode::IgnoresRange,
                    m => m,
                };
                answer_blob(&mut w, mode, digest.unwrap_or_default(), bytes, stop)
            }
            _ => w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").is_ok(),
        };
        if !ok {
            return;
        }
    }
}

fn answer_blob(w: &mut TcpStream, mode: SourceMode, digest: &str, bytes: &[u8], stop: &AtomicBool) -> bool {
    match mode {
        SourceMode::IgnoresRange => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", bytes.len());
            w.write_all(head.as_bytes()).and_then(|_| w.write_all(bytes)).is_ok()
        }
        SourceMode::Overlong => {
            let extra = vec![0x5a; 1 << 20];
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", bytes.len() + extra.len());
            w.write_all(head.as_bytes()).and_then(|_| w.write_all(bytes)).and_then(|_| w.write_all(&extra)).is_ok()
        }
        SourceMode::Endless => {
            if w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err() {
                return false;
            }
            let piece = vec![0xa5; 64 << 10];
            let chunk = [format!("{:x}\r\n", piece.len()).into_bytes(), piece, b"\r\n".to_vec()].concat();
            while !stop.load(Ordering::SeqCst) {
                if w.write_all(&chunk).is_err() {
                    return false;
                }
            }
            false
        }
        SourceMode::RedirectsTo(port) => {
            let head = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{port}/store/blobs/{digest}?X-Amz-Signature={SIGNATURE}\r\nContent-Length: 0\r\n\r\n"
            );
            w.write_all(head.as_bytes()).is_ok()
        }
        SourceMode::ShortBody | SourceMode::DropsOnce => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", bytes.len());
            let cut = if mode == SourceMode::DropsOnce { 1024 } else { bytes.len() / 2 };
            let _ = w.write_all(head.as_bytes()).and_then(|_| w.write_all(&bytes[..cut]));
            let _ = w.shutdown(std::net::Shutdown::Both);
            false
        }
        SourceMode::Trickle => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", bytes.len());
            if w.write_all(head.as_bytes()).is_err() {
                return false;
            }
            for b in bytes {
                if stop.load(Ordering::SeqCst) || w.write_all(&[*b]).and_then(|_| w.flush()).is_err() {
                    return false;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            true
        }
    }
}
