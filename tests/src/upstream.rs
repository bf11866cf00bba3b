//! A fake regional backend: a small HTTP/1.1 server on `127.0.0.1:<ephemeral>`.
//!
//! Every response carries
//! * `x-served-region: <region>` and the region in the body,
//! * `x-seen-geolb-region: <value>`: the `x-geolb-region` request header as received
//!   (duplicates joined with `,`; empty if absent, which proves the route removed it),
//! * `x-served-by: <ip:port>` of this upstream.
//!
//! Thread per connection, keep-alive, listen backlog 1024. Faults: [`Upstream::set_failing`]
//! (answer a status such as 503), [`Upstream::set_delay`], [`Upstream::stop`] (close the
//! listener and every open connection: new connects are refused) and
//! [`Upstream::restart`] (listen again on the same port).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::listening::{Listening, Serve, bind_loopback};

/// The routing header geolb sets (echoed back as `x-seen-geolb-region`).
pub use geolb_policy::DEFAULT_ROUTING_HEADER as ROUTING_HEADER;

/// What the upstream puts in a 200 response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// `region=<region>\n` (default).
    Region,
    /// Like Bookinfo's reviews v1: two reviews, no stars.
    ReviewsV1,
    /// Like Bookinfo's reviews v2: two reviews, each with a line containing `full stars`.
    ReviewsV2,
    /// Like Bookinfo's reviews v3: v2's two star lines, but red (`color="red"`), so the
    /// seed's `grep full.stars` counts them too and `red` tells v3 apart.
    ReviewsV3,
    /// A fixed body.
    Custom(String),
}

impl Body {
    fn render(&self, region: &str) -> String {
        const R1: &str = "Reviewer1: An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!";
        const R2: &str = "Reviewer2: Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.";
        match self {
            Body::Region => format!("region={region}\n"),
            Body::ReviewsV1 => format!("reviews-v1 region={region}\n{R1}\n{R2}\n"),
            Body::ReviewsV2 => format!(
                "reviews-v2 region={region}\n{R1}\n<span class=\"glyphicon glyphicon-star\"></span> <!-- full stars: 5 -->\n{R2}\n<span class=\"glyphicon glyphicon-star\"></span> <!-- full stars: 4 -->\n"
            ),
            Body::ReviewsV3 => format!(
                "reviews-v3 region={region}\n{R1}\n<font color=\"red\"><span class=\"glyphicon glyphicon-star\"></span></font> <!-- full stars: 5 -->\n{R2}\n<font color=\"red\"><span class=\"glyphicon glyphicon-star\"></span></font> <!-- full stars: 4 -->\n"
            ),
            Body::Custom(s) => s.clone(),
        }
    }
}

struct Shared {
    region: String,
    addr: SocketAddr,
    /// 0 = healthy (200), else the status to answer.
    failing: AtomicU16,
    /// Of every 1000 requests, how many get `failing` (1000: all).
    failing_permille: AtomicU64,
    /// Requests answered since the last fault change, for spreading a fraction evenly.
    fault_count: AtomicU64,
    delay_ms: AtomicU64,
    body: Mutex<Body>,
    served: AtomicU64,
    /// Requests from geolb's prober (`user-agent: geolb-probe`), not in `served`.
    probes_served: AtomicU64,
    listening: Listening,
    last_request: Mutex<Vec<(String, String)>>,
}

/// A running (or stopped) fake upstream of one region. Stops on drop.
pub struct Upstream {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Starts an upstream for `region` on 127.0.0.1 with an ephemeral port.
    pub fn start(region: &str) -> Upstream {
        let (listener, addr) = bind_loopback(&format!("upstream {region}"));
        let shared = Arc::new(Shared {
            region: region.to_string(),
            addr,
            failing: AtomicU16::new(0),
            failing_permille: AtomicU64::new(1_000),
            fault_count: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
            body: Mutex::new(Body::Region),
            served: AtomicU64::new(0),
            probes_served: AtomicU64::new(0),
            listening: Listening::new(addr),
            last_request: Mutex::new(Vec::new()),
        });
        let acceptor = Some(spawn_acceptor(listener, shared.clone()));
        Upstream { shared, acceptor }
    }

    /// The address it listens on (kept across [`Upstream::restart`]).
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The region it reports.
    pub fn region(&self) -> &str {
        &self.shared.region
    }

    /// Answer every request with `status` (e.g. 503) instead of 200; `set_failing(0)` or
    /// [`Upstream::set_healthy`] heals it.
    pub fn set_failing(&self, status: u16) {
        self.set_failing_fraction(status, 1_000);
    }

    /// Answer `permille` of every 1000 requests with `status`, spread evenly (the n-th
    /// request fails when `n * permille / 1000` steps up), the rest with 200.
    pub fn set_failing_fraction(&self, status: u16, permille: u64) {
        self.shared
            .failing_permille
            .store(permille.min(1_000), Ordering::SeqCst);
        self.shared.fault_count.store(0, Ordering::SeqCst);
        self.shared.failing.store(status, Ordering::SeqCst);
    }

    /// Answer 200 again.
    pub fn set_healthy(&self) {
        self.set_failing(0);
    }

    /// Wait this long before answering each request.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// What a 200 response carries in its body.
    pub fn set_body(&self, body: Body) {
        *lock(&self.shared.body) = body;
    }

    /// Requests answered so far (any status).
    pub fn served(&self) -> u64 {
        self.shared.served.load(Ordering::SeqCst)
    }

    /// Probes of geolb's prober answered (200 or the failing status), since start.
    pub fn probes_served(&self) -> u64 {
        self.shared.probes_served.load(Ordering::SeqCst)
    }

    /// The headers of the last request received (names lower-cased, in order).
    pub fn last_request_headers(&self) -> Vec<(String, String)> {
        lock(&self.shared.last_request).clone()
    }

    /// Whether it is listening.
    pub fn is_running(&self) -> bool {
        self.acceptor.is_some()
    }

    /// Closes the listener and all open connections: connects are refused afterwards.
    /// Idempotent.
    pub fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.listening.stop(acceptor);
    }

    /// Listens again on the same address (after [`Upstream::stop`]). Retries the bind for a
    /// few seconds in case the port is briefly unavailable.
    pub fn restart(&mut self) {
        if self.acceptor.is_some() {
            return;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match bind(self.shared.addr) {
                Ok(l) => break l,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!(
                    "upstream {}: cannot listen again on {}: {e}",
                    self.shared.region, self.shared.addr
                ),
            }
        };
        self.acceptor = Some(spawn_acceptor(listener, self.shared.clone()));
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("region", &self.shared.region)
            .field("addr", &self.shared.addr)
            .field("running", &self.is_running())
            .field("served", &self.served())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn spawn_acceptor(listener: TcpListener, shared: Arc<Shared>) -> JoinHandle<()> {
    let name = format!("upstream-{}", shared.region);
    Listening::spawn(name, listener, shared)
}

impl Serve for Shared {
    fn listening(&self) -> &Listening {
        &self.listening
    }
    fn serve(&self, stream: TcpStream) -> io::Result<()> {
        serve_connection(stream, self)
    }
}

/// A parsed request head. Header names are lower-cased.
pub(crate) struct Head {
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) close: bool,
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(head) = read_request(&mut reader)? else {
            return Ok(());
        };
        if !shared.listening.is_running() {
            return Ok(());
        }
        let delay = shared.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let seen: Vec<String> = head
            .headers
            .iter()
            .filter(|(k, _)| k == ROUTING_HEADER)
            .map(|(_, v)| v.clone())
            .collect();
        let mut failing = shared.failing.load(Ordering::SeqCst);
        if failing != 0 {
            let permille = shared.failing_permille.load(Ordering::SeqCst);
            let n = shared.fault_count.fetch_add(1, Ordering::SeqCst);
            if (n + 1) * permille / 1_000 == n * permille / 1_000 {
                failing = 0;
            }
        }
        let (status, body) = if failing == 0 {
            (200, lock(&shared.body).render(&shared.region))
        } else {
            (failing, format!("failing region={}\n", shared.region))
        };
        let probe = head
            .headers
            .iter()
            .any(|(k, v)| k == "user-agent" && v == "geolb-probe");
        *lock(&shared.last_request) = head.headers;
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\nx-served-region: {region}\r\nx-seen-geolb-region: {seen}\r\nx-served-by: {addr}\r\ncontent-length: {len}\r\n{conn}\r\n{body}",
            reason = reason(status),
            region = shared.region,
            seen = seen.join(","),
            addr = shared.addr,
            len = body.len(),
            conn = if head.close {
                "connection: close\r\n"
            } else {
                ""
            },
        );
        // Count before writing, so a client that got the response sees the count.
        if probe {
            shared.probes_served.fetch_add(1, Ordering::SeqCst);
        } else {
            shared.served.fetch_add(1, Ordering::SeqCst);
        }
        writer.write_all(response.as_bytes())?;
        writer.flush()?;
        if head.close {
            return Ok(());
        }
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Reads one request (head and body, which is discarded). `None` on a clean EOF.
pub(crate) fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Head>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let http10 = line.trim_end().ends_with("HTTP/1.0");
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let close = match get("connection") {
        Some(v) if v.contains("close") => true,
        Some(v) if v.contains("keep-alive") => false,
        _ => http10,
    };
    if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(reader)?;
    } else if let Some(len) = get("content-length").and_then(|v| v.parse::<u64>().ok()) {
        io::copy(&mut reader.by_ref().take(len), &mut io::sink())?;
    }
    Ok(Some(Head {
        path,
        headers,
        close,
    }))
}

/// Reads and discards a chunked body including trailers.
pub(crate) fn read_chunked<R: BufRead>(reader: &mut R) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "eof in chunked body",
            ));
        }
        let size_hex = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // trailers until an empty line
            loop {
                let mut t = String::new();
                if reader.read_line(&mut t)? == 0 || t.trim().is_empty() {
                    return Ok(out);
                }
            }
        }
        let start = out.len();
        out.resize(start + size, 0);
        reader.read_exact(out.get_mut(start..).unwrap_or_default())?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}
