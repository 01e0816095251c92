//! The listener (TCP or unix socket) and the answer to each connection.
//!
//! The daemon owns the [`Listener`] and polls its `accept` in its own loop,
//! so closing or replacing it on reload happens at once, in step with the
//! policy; each connection is then answered on a task of its own, and the
//! kernel reads (blocking bpf(2) calls) run on tokio's blocking pool: a
//! scrape never holds up the loop that reports events and finds targets.

use std::{
    io,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream, UnixListener, UnixStream},
    sync::{Mutex, Semaphore},
    time::timeout,
};
use tracing::{debug, warn};

use super::{
    http::{self, Route, Status},
    Format, ListenAddr, Snapshot,
};
use crate::{
    error::{Error, Result},
    paths::Paths,
};

/// Connections answered at once; more wait in the kernel's backlog.
const CONNECTIONS: usize = 8;
/// A client has this long to send its request head, and to take the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept (out of file descriptors), wait before the next,
/// rather than spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(200);
const BACKLOG: u32 = 64;

/// A bound metrics listener. Dropping it closes it (a unix socket's file
/// is removed, if it is still ours).
pub struct Listener {
    addr: ListenAddr,
    kind: Kind,
}

enum Kind {
    Tcp(TcpListener),
    /// The socket file's inode, to remove only our own.
    Unix(UnixListener, PathBuf, u64),
}

/// An accepted connection.
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    /// Binds `addr` now, so a failure is known at once. Needs to run inside
    /// the tokio runtime.
    pub fn bind(addr: &ListenAddr) -> Result<Self> {
        let error = |cause| Error::Metrics { addr: addr.to_string(), cause };
        let kind = match addr {
            ListenAddr::Tcp(socket_addr) => {
                let socket =
                    if socket_addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(error)?;
                // A restarted ramd binds again while the last one's
                // connections sit in TIME_WAIT.
                socket.set_reuseaddr(true).map_err(error)?;
                socket.bind(*socket_addr).map_err(error)?;
                Kind::Tcp(socket.listen(BACKLOG).map_err(error)?)
            }
            ListenAddr::Unix(path) => {
                clear_stale_socket(path).map_err(error)?;
                let listener = UnixListener::bind(path).map_err(error)?;
                let inode = std::fs::metadata(path).map_err(error)?.ino();
                Kind::Unix(listener, path.clone(), inode)
            }
        };
        Ok(Listener { addr: addr.clone(), kind })
    }

    pub fn addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// The next connection. Cancel safe: the daemon's loop polls it among
    /// its other work and drops it whenever another branch is ready.
    pub async fn accept(&self) -> Conn {
        loop {
            let accepted = match &self.kind {
                Kind::Tcp(listener) => listener.accept().await.map(|(stream, _)| Conn::Tcp(stream)),
                Kind::Unix(listener, _, _) => listener.accept().await.map(|(stream, _)| Conn::Unix(stream)),
            };
            match accepted {
                Ok(conn) => return conn,
                Err(e) => {
                    debug!(listen = %self.addr, "metrics: accept failed: {e}");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Kind::Unix(_, path, inode) = &self.kind {
            // Another ramd may have bound the path since (after ours went
            // stale): its socket stays.
            if std::fs::metadata(path).is_ok_and(|m| m.ino() == *inode) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// A socket file left by a ramd that did not close it (killed) is
/// removed; one that someone still answers on is in use, and anything that
/// is not a socket is never removed.
fn clear_stale_socket(path: &Path) -> io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists and is not a socket"));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(io::ErrorKind::AddrInUse, "another process answers on this socket")),
        Err(_) => std::fs::remove_file(path),
    }
}

/// Limits what scrapes cost: so many connections at once, and one kernel
/// read at a time (a second scraper waits for the first's read instead of
/// walking the same maps beside it).
#[derive(Clone)]
pub struct ScrapeGate {
    connections: Arc<Semaphore>,
    reading: Arc<Mutex<()>>,
}

impl Default for ScrapeGate {
    fn default() -> Self {
        ScrapeGate { connections: Arc::new(Semaphore::new(CONNECTIONS)), reading: Arc::new(Mutex::new(())) }
    }
}

impl ScrapeGate {
    /// Answers `conn` on a task of its own; over the limit of connections
    /// it is closed at once (the scraper retries at its next interval).
    pub fn serve(&self, conn: Conn, paths: Paths, snapshot: Snapshot) {
        let Ok(permit) = self.connections.clone().try_acquire_owned() else {
            debug!("metrics: too many connections at once; closing one");
            return;
        };
        let gate = self.clone();
        tokio::spawn(async move {
            match conn {
                Conn::Tcp(stream) => gate.answer(stream, paths, snapshot).await,
                Conn::Unix(stream) => gate.answer(stream, paths, snapshot).await,
            }
            drop(permit);
        });
    }

    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S, paths: Paths, snapshot: Snapshot) {
        let mut head = Vec::with_capacity(1024);
        let route = match timeout(CLIENT_TIMEOUT, read_head(&mut stream, &mut head)).await {
            Ok(Ok(Some(end))) => http::route(&head[..end]),
            Ok(Ok(None)) => Route::Refused(Status::HeadTooLarge),
            // Gone, or too slow: nothing to answer.
            Ok(Err(_)) | Err(_) => return,
        };
        let reply = match route {
            Route::Refused(status) => {
                http::response(status, "text/plain; charset=utf-8", status.text().as_bytes(), false)
            }
            Route::Metrics { format, head_only } => match self.scrape(paths, snapshot, format).await {
                Ok(body) => http::response(Status::Ok, format.content_type(), body.as_bytes(), head_only),
                Err(e) => {
                    warn!("metrics: {e}");
                    let status = Status::Unavailable;
                    http::response(status, "text/plain; charset=utf-8", status.text().as_bytes(), head_only)
                }
            },
        };
        let _ = timeout(CLIENT_TIMEOUT, async {
            stream.write_all(&reply).await?;
            stream.shutdown().await
        })
        .await;
    }

    /// Reads the kernel and encodes, on the blocking pool.
    async fn scrape(&self, paths: Paths, snapshot: Snapshot, format: Format) -> std::result::Result<String, String> {
        let _reading = self.reading.lock().await;
        let work = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut readings = super::collect(&paths, &snapshot).map_err(|e| e.to_string())?;
            readings.collect_seconds = started.elapsed().as_secs_f64();
            debug!(seconds = readings.collect_seconds, "metrics: kernel state read");
            super::encode(&snapshot, &readings, format).map_err(|_| "cannot encode the metrics".to_string())
        });
        work.await.map_err(|e| format!("reading the metrics failed: {e}"))?
    }
}

/// Reads until the request head is complete: Some(its length), or None
/// when it grows past [`http::MAX_HEAD`].
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = http::head_end(buf) {
            return Ok(Some(end));
        }
        if buf.len() >= http::MAX_HEAD {
            return Ok(None);
        }
    }
}
