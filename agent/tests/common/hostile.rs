//! A tiny HTTP/1.1 server on loopback that answers like no registry should:
//! hostile input for the agent's client. One thread per connection; each
//! connection ends when the client goes away, and the listener when the
//! server is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `200 <html>hello</html>` to every request.
    Html,
    /// Success to everything, as a registry would answer (202 with a
    /// Location to upload starts and PATCHes, 201 to PUTs, 200 to HEADs and
    /// GETs), and never a `Docker-Content-Digest`.
    AcceptAll,
    /// Answers the start-up probes (`/api/v2.0/ping` 404, `GET /v2/` 200),
    /// then trickles every other answer at one byte a second.
    Trickle,
    /// [`AcceptAll`](Behaviour::AcceptAll) behind Basic auth (a request
    /// without `Authorization` gets a 401 Basic challenge), except that an
    /// upload start is answered with a Location on another server: this
    /// port of 127.0.0.1.
    UploadsElsewhere(u16),
    /// [`AcceptAll`](Behaviour::AcceptAll), except that an upload start is
    /// refused (400) with an error body full of terminal escape sequences.
    EscapesInErrors,
}

/// What an error body of [`Behaviour::EscapesInErrors`] says: colour, a
/// window title, a CSI clear screen, a carriage return over the line.
pub const HOSTILE_ERROR_BODY: &str =
    "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"\u{1b}[31mpwned\u{1b}]0;title\u{7}\u{9b}2J\rall good\"}]}";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: bool,
    /// The `Range` header, if any.
    pub range: Option<String>,
}

pub struct HostileServer {
    pub url: String,
    /// Every request, in order of arrival.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl HostileServer {
    pub fn start(behaviour: Behaviour) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, log) = (st.clone(), log.clone());
                std::thread::spawn(move || serve(conn, behaviour, &st, &log));
            }
        });
        HostileServer { url: format!("http://{addr}"), seen, stop, addr }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One request's method, path, whether it carried `Authorization` and its
/// `Range`, its body read and dropped.
pub fn read_request(r: &mut BufReader<TcpStream>) -> Option<Seen> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut len = 0usize;
    let mut chunked = false;
    let mut authorization = false;
    let mut range = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        authorization |= lower.starts_with("authorization:");
        if let Some(v) = lower.strip_prefix("range:") {
            range = Some(v.trim().to_owned());
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut skip = vec![0; n + 2];
            r.read_exact(&mut skip).ok()?;
            if n == 0 {
                break;
            }
        }
    } else {
        std::io::copy(&mut r.by_ref().take(len as u64), &mut std::io::sink()).ok()?;
    }
    Some(Seen { method, path, authorization, range })
}

fn serve(conn: TcpStream, behaviour: Behaviour, stop: &AtomicBool, log: &Mutex<Vec<Seen>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    let mut uploads = 0;
    while let Some(seen) = read_request(&mut r) {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        log.lock().unwrap().push(seen.clone());
        let Seen { method, path, authorization, .. } = seen;
        let html = "<html>hello</html>";
        let answer = match behaviour {
            Behaviour::Html => {
                format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{html}", html.len())
            }
            Behaviour::UploadsElsewhere(_) if !authorization => {
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"hostile\"\r\nContent-Length: 0\r\n\r\n"
                    .to_owned()
            }
            Behaviour::EscapesInErrors if method == "POST" => format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{HOSTILE_ERROR_BODY}",
                HOSTILE_ERROR_BODY.len()
            ),
            Behaviour::AcceptAll | Behaviour::UploadsElsewhere(_) | Behaviour::EscapesInErrors => {
                uploads += 1;
                let loc = match behaviour {
                    Behaviour::UploadsElsewhere(port) => format!("http://127.0.0.1:{port}/v2/upload/{uploads}?_state=x"),
                    _ => format!("/v2/upload/{uploads}?_state=x"),
                };
                match method.as_str() {
                    "POST" | "PATCH" => {
                        format!("HTTP/1.1 202 Accepted\r\nLocation: {loc}\r\nRange: 0-0\r\nContent-Length: 0\r\n\r\n")
                    }
                    "PUT" => "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_owned(),
                    _ => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{html}", html.len()),
                }
            }
            Behaviour::Trickle => {
                if path.starts_with("/api/v2.0/ping") {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned()
                } else if path == "/v2/" {
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_owned()
                } else {
                    let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{html}", html.len());
                    for b in answer.as_bytes() {
                        if stop.load(Ordering::SeqCst) || w.write_all(&[*b]).and_then(|_| w.flush()).is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    continue;
                }
            }
        };
        // A HEAD's answer has the headers of a GET and no body.
        let answer = match (method.as_str(), answer.split_once("\r\n\r\n")) {
            ("HEAD", Some((head, _))) => format!("{head}\r\n\r\n"),
            _ => answer,
        };
        if w.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
