//! The HTTP accept loop: hyper configured for bounded memory per connection
//! and a cap on open connections.
//!
//! Admission bounds the requests being processed, but every open connection
//! costs memory too: a task, socket state, and hyper's read buffer, which by
//! default grows to about 400 KiB per connection while a large body streams
//! in. Under a flood of clients uploading 100 KB bodies that buffer, not the
//! admitted requests, was most of the gateway's resident memory. So:
//! - at most `admission.max_connections` connections are open; past the cap
//!   the loop stops accepting and new connections wait in the kernel's listen
//!   backlog until one closes, rather than the gateway growing without bound;
//! - the read buffer is capped at [`READ_BUFFER_BYTES`] (bodies stream
//!   through it in pieces; a request head must fit in it);
//! - a connection must send a request head within hyper's 30 s header
//!   timeout, so idle or stalled connections give their permit back.
//!
//! The cap is a safety bound, to be set above the connections clients and
//! load balancers normally keep open: a client beyond it waits for a free
//! permit (up to the 30 s timeout of an idle connection), and once the
//! kernel's backlog overflows its connection attempts fail. Answering near
//! the cap with `Connection: close` was tried and made it worse: the churn of
//! new connections overflowed the backlog and clients saw resets.
//!
//! Shutdown is graceful: accepting stops, each connection finishes its
//! in-flight request and closes, and [`serve`] returns when all have.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Largest read buffer of one connection, and so the largest request head.
pub const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Serves `app` on `listener` with at most `permits`' number of connections
/// open, until `shutdown` completes; then drains connections and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    permits: Arc<Semaphore>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut builder = http1::Builder::new();
    builder
        .max_buf_size(READ_BUFFER_BYTES)
        .timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permit else {
            // Closed: nothing will ever be accepted again.
            break;
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::trace!(error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of one connection are the client's business; others (out of file
/// descriptors) would spin the loop, so they pause it a moment.
async fn accept_failed(err: io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::Notify;

    use super::*;

    async fn get_ok(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0_u8; 256];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn serves_no_more_connections_than_the_cap_and_drains_on_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let permits = Arc::new(Semaphore::new(1));
        let stop = Arc::new(Notify::new());
        let app = Router::new().route("/", get(|| async { "ok" }));
        let server = tokio::spawn(serve(listener, app, permits.clone(), {
            let stop = stop.clone();
            async move { stop.notified().await }
        }));

        // An idle first connection takes the only permit...
        let first = TcpStream::connect(addr).await.unwrap();
        while permits.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // ...so the second client connects (the kernel's backlog) but is not
        // served while the first connection is open...
        let mut second = TcpStream::connect(addr).await.unwrap();
        second
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0_u8; 256];
        let waiting = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
        assert!(waiting.is_err(), "served past the cap");

        // ...and is once it closes.
        drop(first);
        let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
            .await
            .expect("served once the first connection closed")
            .unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        assert!(
            get_ok(&mut second).await.starts_with("HTTP/1.1 200"),
            "kept alive"
        );

        // Shutdown returns once every connection is closed.
        stop.notify_one();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returned after shutdown")
            .unwrap();
        assert_eq!(second.read(&mut buf).await.unwrap(), 0, "closed");
    }
}
