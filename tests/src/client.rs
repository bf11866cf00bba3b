//! A small raw HTTP/1.1 client: headers are written exactly as given (order, case and
//! duplicates preserved), so tests can send spoofed, duplicated or mixed-case routing
//! headers.
//!
//! * [`send_on_one_connection`]: N sequential requests over ONE keep-alive connection,
//!   so they all land on the same Envoy worker (and the same wasm VM).
//! * [`send_on_new_connections`]: N requests, each on its own connection.
//! * [`send_parallel`]: several connections in parallel threads, each sequential.
//! * [`Summary`]: counts of statuses, errors and serving regions.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The `Host` header used when a request sets none: the Bookinfo reviews service as a
/// mesh client addresses it.
pub const DEFAULT_AUTHORITY: &str = "reviews:9080";

/// Read/write timeout of every client socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP/1.1 request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Written verbatim, in order. If none is named `host` (any case),
    /// `Host: DEFAULT_AUTHORITY` is added first.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// `GET path` with no headers (Host defaults to [`DEFAULT_AUTHORITY`]).
    pub fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `GET /reviews/0` to `reviews:9080`, like Bookinfo's productpage.
    pub fn reviews() -> Request {
        Request::get("/reviews/0")
    }

    /// Adds a header (appends: call twice for a duplicated header).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the `Host` (authority), replacing any previous one.
    pub fn host(mut self, authority: &str) -> Request {
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("host"));
        self.headers.insert(0, ("Host".into(), authority.into()));
        self
    }

    /// A `POST` body (sets `content-length`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.method = "POST".into();
        self.body = body.into();
        self
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("host"))
        {
            out.push_str(&format!("Host: {DEFAULT_AUTHORITY}\r\n"));
        }
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !self.body.is_empty()
            && !self
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            out.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A response: status, headers (names lower-cased, in order) and body.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `x-served-region` set by the fake upstream (`None` for Envoy's local replies).
    pub fn served_region(&self) -> Option<&str> {
        self.header("x-served-region")
    }

    /// `x-seen-geolb-region`: the routing header as the upstream app received it
    /// (empty string = absent).
    pub fn seen_routing_header(&self) -> Option<&str> {
        self.header("x-seen-geolb-region")
    }

    /// 2xx?
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"))
    }
}

/// One client connection (keep-alive).
pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    closed: bool,
}

impl Connection {
    /// Connects to `addr`.
    pub fn open(addr: SocketAddr) -> io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let writer = stream.try_clone()?;
        Ok(Connection {
            reader: BufReader::new(stream),
            writer,
            closed: false,
        })
    }

    /// Whether the server closed it (`connection: close` or EOF).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends one request and reads its response.
    pub fn send(&mut self, req: &Request) -> io::Result<Response> {
        if self.closed {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "connection closed by the server",
            ));
        }
        let result = self.exchange(req);
        match &result {
            Ok(r) if r.wants_close() => self.closed = true,
            Ok(_) => {}
            Err(_) => self.closed = true,
        }
        result
    }

    fn exchange(&mut self, req: &Request) -> io::Result<Response> {
        self.writer.write_all(&req.encode())?;
        self.writer.flush()?;
        read_response(&mut self.reader, req.method == "HEAD")
    }
}

fn read_response<R: BufRead>(reader: &mut R, head_only: bool) -> io::Result<Response> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {line:?}"),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "eof in response head",
            ));
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(resp);
    }
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        resp.body = crate::upstream::read_chunked(reader)?;
    } else if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
    {
        reader.take(len).read_to_end(&mut resp.body)?;
    } else {
        reader.read_to_end(&mut resp.body)?;
    }
    Ok(resp)
}

/// Sends `req` `n` times sequentially over one keep-alive connection (one Envoy worker).
/// If the server closes the connection, the next request opens a new one; every failure
/// is returned in place, never retried.
pub fn send_on_one_connection(
    addr: SocketAddr,
    req: &Request,
    n: usize,
) -> Vec<io::Result<Response>> {
    let mut conn: Option<Connection> = None;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if conn.as_ref().is_none_or(Connection::is_closed) {
            match Connection::open(addr) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    out.push(Err(e));
                    conn = None;
                    continue;
                }
            }
        }
        let result = match conn.as_mut() {
            Some(c) => c.send(req),
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "no connection")),
        };
        out.push(result);
    }
    out
}

/// Sends `req` `n` times, each on a new connection.
pub fn send_on_new_connections(
    addr: SocketAddr,
    req: &Request,
    n: usize,
) -> Vec<io::Result<Response>> {
    (0..n).map(|_| send_one(addr, req)).collect()
}

/// Sends one request on a new connection.
pub fn send_one(addr: SocketAddr, req: &Request) -> io::Result<Response> {
    Connection::open(addr)?.send(req)
}

/// `connections` threads in parallel, each sending `per_connection` requests over its own
/// keep-alive connection. Results are concatenated in thread order.
pub fn send_parallel(
    addr: SocketAddr,
    req: &Request,
    connections: usize,
    per_connection: usize,
) -> Vec<io::Result<Response>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..connections)
            .map(|_| s.spawn(|| send_on_one_connection(addr, req, per_connection)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err(io::Error::other("client thread panicked"))])
            })
            .collect()
    })
}

/// Counts over a batch of results.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of results.
    pub total: usize,
    /// 2xx responses.
    pub ok: usize,
    /// Non-2xx responses by status.
    pub non_2xx: BTreeMap<u16, usize>,
    /// Transport errors (no response at all).
    pub errors: usize,
    /// 2xx responses by `x-served-region` (`"-"` if absent).
    pub by_region: BTreeMap<String, usize>,
    /// All responses (any status) by the `x-seen-geolb-region` the app saw
    /// (`""` = header absent at the app, `"-"` = no upstream response).
    pub by_seen_header: BTreeMap<String, usize>,
    /// The first few error or non-2xx descriptions, for failure messages.
    pub samples: Vec<String>,
}

impl Summary {
    /// Tallies `results`.
    pub fn of(results: &[io::Result<Response>]) -> Summary {
        let mut s = Summary {
            total: results.len(),
            ..Summary::default()
        };
        for r in results {
            match r {
                Ok(resp) => {
                    let seen = resp.seen_routing_header().unwrap_or("-").to_string();
                    *s.by_seen_header.entry(seen).or_default() += 1;
                    if resp.is_success() {
                        s.ok += 1;
                        let region = resp.served_region().unwrap_or("-").to_string();
                        *s.by_region.entry(region).or_default() += 1;
                    } else {
                        *s.non_2xx.entry(resp.status).or_default() += 1;
                        if s.samples.len() < 5 {
                            s.samples
                                .push(format!("{} {:?}", resp.status, resp.body_str().trim()));
                        }
                    }
                }
                Err(e) => {
                    s.errors += 1;
                    if s.samples.len() < 5 {
                        s.samples.push(format!("transport error: {e}"));
                    }
                }
            }
        }
        s
    }

    /// Non-2xx responses plus transport errors.
    pub fn failures(&self) -> usize {
        self.errors + self.non_2xx.values().sum::<usize>()
    }

    /// 2xx responses served by `region`.
    pub fn served_by(&self, region: &str) -> usize {
        self.by_region.get(region).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "total={} ok={} non_2xx={:?} errors={} by_region={:?} seen_header={:?}",
            self.total, self.ok, self.non_2xx, self.errors, self.by_region, self.by_seen_header
        )?;
        if !self.samples.is_empty() {
            write!(f, " samples={:?}", self.samples)?;
        }
        Ok(())
    }
}

/// Parses a complete response held in memory (used for admin requests).
pub(crate) fn parse_full_response(mut raw: &[u8]) -> io::Result<Response> {
    read_response(&mut raw, false)
}
