//! Bookinfo's productpage as a fake app: the piece that makes a request chain
//! (ingress gateway → productpage → its sidecar → reviews) out of single Envoys.
//!
//! `GET /productpage` calls `GET /reviews/0` with `Host: reviews:9080` through the
//! sidecar's outbound listener (set with [`Productpage::send_reviews_through`]) on ONE
//! keep-alive connection shared by all its inbound connections, as an app with a
//! connection pool of one would: every reviews call then lands on the same sidecar worker,
//! whose wasm VM splits exactly (the filter's 90/10 is exact per VM).
//!
//! The page embeds the reviews body. Like Bookinfo's productpage, a failed reviews call
//! (non-2xx, or no response) still answers **200** with the text
//! [`REVIEWS_UNAVAILABLE`]: a user sees a page without reviews, not an error status. Tests
//! count such pages as client-visible errors ([`Page::reviews_failed`]).
//!
//! Response headers: `x-served-region` (productpage's own region), `x-reviews-region` (the
//! `x-served-region` of the reviews answer, empty when it failed) and `x-reviews-status`
//! (its status code, or `error` when there was no response). Other paths (`/static/..`,
//! `/login`, ...) answer a small 200; anything else 404.

use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::client::{Connection, Request, Response};
use crate::listening::{Listening, Serve, bind_loopback};
use crate::upstream::{read_request, reason};

/// What Bookinfo's productpage shows when reviews cannot be fetched.
pub const REVIEWS_UNAVAILABLE: &str =
    "Sorry, product reviews are currently unavailable for this book.";

/// The authority productpage uses for reviews (Bookinfo: `http://reviews:9080`).
pub const REVIEWS_AUTHORITY: &str = "reviews:9080";

/// Paths productpage answers besides `/productpage` (the Bookinfo gateway routes them).
const OTHER_PATHS: [&str; 4] = ["/login", "/logout", "/static", "/api/v1/products"];

struct Shared {
    region: String,
    addr: SocketAddr,
    /// The sidecar's outbound listener; `None` until the sidecar runs.
    reviews_via: Mutex<Option<SocketAddr>>,
    /// The one connection to the sidecar, opened on first use and again only after the
    /// sidecar closed it.
    reviews_conn: Mutex<Option<Connection>>,
    reviews_connections_opened: AtomicU64,
    pages: AtomicU64,
    /// The headers of the last request (names lower-cased, in order).
    last_request: Mutex<Vec<(String, String)>>,
    listening: Listening,
}

/// A running productpage fake of one region. Stops on drop.
pub struct Productpage {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Productpage {
    /// Starts it on 127.0.0.1 with an ephemeral port. Until
    /// [`Productpage::send_reviews_through`] is called, pages report reviews unavailable.
    pub fn start(region: &str) -> Productpage {
        let (listener, addr) = bind_loopback(&format!("productpage {region}"));
        let shared = Arc::new(Shared {
            region: region.to_string(),
            addr,
            reviews_via: Mutex::new(None),
            reviews_conn: Mutex::new(None),
            reviews_connections_opened: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            last_request: Mutex::new(Vec::new()),
            listening: Listening::new(addr),
        });
        let acceptor = Some(spawn_acceptor(listener, shared.clone()));
        Productpage { shared, acceptor }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Its region.
    pub fn region(&self) -> &str {
        &self.shared.region
    }

    /// Calls reviews through this address (the sidecar's outbound listener for port 9080)
    /// from now on; drops the current connection.
    pub fn send_reviews_through(&self, sidecar_outbound: SocketAddr) {
        *lock(&self.shared.reviews_via) = Some(sidecar_outbound);
        *lock(&self.shared.reviews_conn) = None;
    }

    /// Connections opened to the sidecar so far (1 while the one connection lives).
    pub fn reviews_connections_opened(&self) -> u64 {
        self.shared
            .reviews_connections_opened
            .load(Ordering::SeqCst)
    }

    /// `/productpage` pages answered so far.
    pub fn pages(&self) -> u64 {
        self.shared.pages.load(Ordering::SeqCst)
    }

    /// The headers of the last request it received (names lower-cased, in order): what
    /// the app would see.
    pub fn last_request_headers(&self) -> Vec<(String, String)> {
        lock(&self.shared.last_request).clone()
    }
}

impl Drop for Productpage {
    fn drop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.listening.stop(acceptor);
    }
}

impl std::fmt::Debug for Productpage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Productpage")
            .field("region", &self.shared.region)
            .field("addr", &self.shared.addr)
            .field("pages", &self.pages())
            .finish()
    }
}

/// A productpage answer as the client saw it, read back from the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// HTTP status of the page itself.
    pub status: u16,
    /// productpage's region (`None` for Envoy's local replies).
    pub productpage_region: Option<String>,
    /// The region that answered the reviews call (`None` when it failed).
    pub reviews_region: Option<String>,
    /// Lines containing `full stars` (the seed's `grep full.stars`).
    pub full_stars_lines: usize,
    /// Lines with red stars (reviews v3).
    pub red_stars_lines: usize,
    /// The page says reviews are unavailable.
    pub reviews_failed: bool,
}

impl Page {
    /// Reads a page from a response.
    pub fn of(resp: &Response) -> Page {
        let body = resp.body_str();
        let reviews_region = resp
            .header("x-reviews-region")
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        Page {
            status: resp.status,
            productpage_region: resp.served_region().map(str::to_owned),
            reviews_region,
            full_stars_lines: body.lines().filter(|l| l.contains("full stars")).count(),
            red_stars_lines: body
                .lines()
                .filter(|l| l.contains("full stars") && l.contains("color=\"red\""))
                .count(),
            reviews_failed: body.contains(REVIEWS_UNAVAILABLE),
        }
    }

    /// A user saw something wrong: no page (non-2xx) or a page without reviews.
    pub fn is_client_visible_error(&self) -> bool {
        !(200..300).contains(&self.status) || self.reviews_failed
    }
}

/// Counts over a series of productpage requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageSummary {
    pub pages: usize,
    /// Requests with no response at all (connection errors).
    pub no_response: usize,
    /// Pages that are errors to a user (non-2xx, or reviews unavailable).
    pub error_pages: usize,
    pub full_stars_lines: usize,
    pub red_stars_lines: usize,
    /// Successful reviews answers per region.
    pub reviews_by_region: std::collections::BTreeMap<String, usize>,
}

impl PageSummary {
    /// Summarizes client results (each a page or an I/O error).
    pub fn of(results: &[io::Result<Response>]) -> PageSummary {
        let mut s = PageSummary::default();
        for r in results {
            match r {
                Ok(resp) => s.add(&Page::of(resp)),
                Err(_) => s.no_response += 1,
            }
        }
        s
    }

    /// Adds one page.
    pub fn add(&mut self, page: &Page) {
        self.pages += 1;
        if page.is_client_visible_error() {
            self.error_pages += 1;
        }
        self.full_stars_lines += page.full_stars_lines;
        self.red_stars_lines += page.red_stars_lines;
        if let (false, Some(region)) = (page.reviews_failed, &page.reviews_region) {
            *self.reviews_by_region.entry(region.clone()).or_default() += 1;
        }
    }

    /// Client-visible errors: no response, or an error page.
    pub fn errors(&self) -> usize {
        self.no_response + self.error_pages
    }

    /// Reviews answers from `region`.
    pub fn reviews_from(&self, region: &str) -> usize {
        self.reviews_by_region.get(region).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for PageSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pages, {} errors ({} without response), reviews by region {:?}, {} \"full stars\" lines ({} red)",
            self.pages + self.no_response,
            self.errors(),
            self.no_response,
            self.reviews_by_region,
            self.full_stars_lines,
            self.red_stars_lines
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn spawn_acceptor(listener: TcpListener, shared: Arc<Shared>) -> JoinHandle<()> {
    let name = format!("productpage-{}", shared.region);
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

fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(head) = read_request(&mut reader)? {
        if !shared.listening.is_running() {
            return Ok(());
        }
        *lock(&shared.last_request) = head.headers.clone();
        let path = head.path.split('?').next().unwrap_or_default();
        let (status, headers, body) = if path == "/productpage" {
            shared.pages.fetch_add(1, Ordering::SeqCst);
            product_page(shared)
        } else if OTHER_PATHS.iter().any(|p| path.starts_with(p)) {
            (
                200,
                String::new(),
                format!("{path} region={}\n", shared.region),
            )
        } else {
            (404, String::new(), "not found\n".to_string())
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html\r\nx-served-region: {region}\r\n{headers}content-length: {len}\r\n{conn}\r\n{body}",
            reason = reason(status),
            region = shared.region,
            len = body.len(),
            conn = if head.close {
                "connection: close\r\n"
            } else {
                ""
            },
        );
        writer.write_all(response.as_bytes())?;
        writer.flush()?;
        if head.close {
            return Ok(());
        }
    }
    Ok(())
}

/// Builds `/productpage`: status, extra header lines, body.
fn product_page(shared: &Shared) -> (u16, String, String) {
    let reviews = call_reviews(shared);
    let (reviews_status, reviews_region, reviews_html) = match &reviews {
        Ok(r) if r.is_success() => (
            r.status.to_string(),
            r.served_region().unwrap_or_default().to_string(),
            r.body_str(),
        ),
        Ok(r) => (
            r.status.to_string(),
            String::new(),
            REVIEWS_UNAVAILABLE.to_string(),
        ),
        Err(_) => (
            "error".to_string(),
            String::new(),
            REVIEWS_UNAVAILABLE.to_string(),
        ),
    };
    let headers =
        format!("x-reviews-region: {reviews_region}\r\nx-reviews-status: {reviews_status}\r\n");
    let body = format!(
        "<html><h1>The Comedy of Errors</h1>\n<p>productpage region={}</p>\n<div class=\"reviews\">\n{reviews_html}\n</div></html>\n",
        shared.region
    );
    (200, headers, body)
}

/// `GET /reviews/0` on the one connection to the sidecar (reopened only once closed).
fn call_reviews(shared: &Shared) -> io::Result<Response> {
    let via = (*lock(&shared.reviews_via)).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotConnected,
            "no sidecar to call reviews through",
        )
    })?;
    let mut conn = lock(&shared.reviews_conn);
    if conn.as_ref().is_none_or(Connection::is_closed) {
        *conn = Some(Connection::open(via)?);
        shared
            .reviews_connections_opened
            .fetch_add(1, Ordering::SeqCst);
    }
    let request = Request::get("/reviews/0").host(REVIEWS_AUTHORITY);
    match conn.as_mut() {
        Some(c) => c.send(&request),
        None => Err(io::Error::other("no connection")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, Upstream, send_one};

    #[test]
    fn a_page_embeds_reviews_through_one_connection_and_says_when_they_fail() {
        let mut reviews = Upstream::start("cn-shanghai");
        reviews.set_body(Body::ReviewsV2);
        let page = Productpage::start("cn-hangzhou");
        let request = Request::get("/productpage").host("bookinfo");

        // No sidecar yet: 200, reviews unavailable.
        let first = Page::of(&send_one(page.addr(), &request).unwrap());
        assert!(
            first.reviews_failed && first.is_client_visible_error(),
            "{first:?}"
        );
        assert_eq!(first.status, 200);

        // Here the "sidecar" is the reviews upstream itself.
        page.send_reviews_through(reviews.addr());
        let results: Vec<_> = (0..3).map(|_| send_one(page.addr(), &request)).collect();
        let s = PageSummary::of(&results);
        assert_eq!((s.errors(), s.reviews_from("cn-shanghai")), (0, 3), "{s}");
        assert_eq!((s.full_stars_lines, s.red_stars_lines), (6, 0), "{s}");
        assert_eq!(page.reviews_connections_opened(), 1);
        let headers = reviews.last_request_headers();
        assert!(
            headers.contains(&("host".into(), REVIEWS_AUTHORITY.into())),
            "{headers:?}"
        );

        reviews.set_body(Body::ReviewsV3);
        let red = Page::of(&send_one(page.addr(), &request).unwrap());
        assert_eq!((red.full_stars_lines, red.red_stars_lines), (2, 2));

        reviews.stop();
        let down = Page::of(&send_one(page.addr(), &request).unwrap());
        assert!(
            down.reviews_failed && down.reviews_region.is_none(),
            "{down:?}"
        );
        assert_eq!(page.pages(), 6);
    }
}
