//! The accept loop the fake servers share ([`crate::Upstream`], the productpage fake): a
//! thread per connection, and every open connection registered, so that stopping a
//! server closes them all, as a crashed pod's connections die with it.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A server that answers the connections [`Listening::spawn`] accepts for it.
pub(crate) trait Serve: Send + Sync + 'static {
    /// Its connection bookkeeping.
    fn listening(&self) -> &Listening;
    /// Serves one connection until it closes.
    fn serve(&self, stream: TcpStream) -> io::Result<()>;
}

/// Whether a server accepts, and its open connections.
pub(crate) struct Listening {
    addr: SocketAddr,
    running: AtomicBool,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, TcpStream>>,
}

impl Listening {
    pub(crate) fn new(addr: SocketAddr) -> Listening {
        Listening {
            addr,
            running: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// False once [`Listening::stop`] began: connections stop answering.
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Accepts on `listener` for `server` on a thread named `name`, until stopped.
    pub(crate) fn spawn<S: Serve>(
        name: String,
        listener: TcpListener,
        server: Arc<S>,
    ) -> JoinHandle<()> {
        server.listening().running.store(true, Ordering::SeqCst);
        let acceptor_name = name.clone();
        std::thread::Builder::new()
            .name(acceptor_name.clone())
            .spawn(move || {
                for stream in listener.incoming() {
                    let listening = server.listening();
                    if !listening.is_running() {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let id = listening.next_id.fetch_add(1, Ordering::SeqCst);
                    if let Ok(clone) = stream.try_clone() {
                        lock(&listening.open).insert(id, clone);
                    }
                    let server = server.clone();
                    let _ = std::thread::Builder::new()
                        .name(format!("{name}-conn"))
                        .spawn(move || {
                            let _ = server.serve(stream);
                            lock(&server.listening().open).remove(&id);
                        });
                }
                // `listener` is dropped here: the port closes.
            })
            .unwrap_or_else(|e| panic!("spawn {acceptor_name} acceptor: {e}"))
    }

    /// Stops accepting (the port closes once `acceptor` ends) and closes every open
    /// connection.
    pub(crate) fn stop(&self, acceptor: JoinHandle<()>) {
        self.running.store(false, Ordering::SeqCst);
        // Wake the blocking accept(); it sees `running == false` and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = acceptor.join();
        let open: Vec<TcpStream> = lock(&self.open).drain().map(|(_, s)| s).collect();
        for c in open {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// A listener on 127.0.0.1 with an ephemeral port, and that port; `what` names the
/// server in the panic message.
pub(crate) fn bind_loopback(what: &str) -> (TcpListener, SocketAddr) {
    let listener = crate::upstream::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap_or_else(|e| panic!("{what}: bind 127.0.0.1:0: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{what}: local_addr: {e}"));
    (listener, addr)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
