//! Slow and stalled clients over real TCP: a half-sent request head, a
//! body that stops arriving, hundreds of half-open connections, and a
//! shutdown that must finish while such clients hang on.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use warden_server::app::router;
use warden_server::listener::{self, Limits};

use crate::support::{Backend, TestApp};

const HALF_HEAD: &[u8] = b"POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n";

/// A server on a free loopback port with `limits`; send on the returned
/// channel to shut it down; the task answers how many connections it had
/// to close abruptly.
struct Served {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<usize>,
    app: TestApp,
}

async fn serve(limits: Limits) -> Served {
    let app = TestApp::new(Backend::Sqlite).await;
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task =
        tokio::spawn(listener::serve(socket, router(app.state.clone()), limits, app.state.metrics.clone(), async {
            let _ = stopped.await;
        }));
    Served { addr, stop: Some(stop), task, app }
}

/// Reads until the server closes or `within` passes; returns what arrived
/// and whether the connection was closed (rather than still hanging).
async fn read_all(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&buf).into_owned(), closed)
}

/// One complete `GET /health`, answered within `within`.
async fn health(addr: SocketAddr, within: Duration) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let (text, closed) = read_all(&mut s, within).await;
    (closed && text.starts_with("HTTP/1.1 200")).then_some(text)
}

fn quick(header_read_timeout: Duration, request_timeout: Duration) -> Limits {
    Limits { header_read_timeout, request_timeout, ..Limits::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_head_is_cut_off_at_the_header_timeout() {
    let served = serve(quick(Duration::from_millis(500), Duration::from_secs(30))).await;
    let mut stalled = TcpStream::connect(served.addr).await.unwrap();
    stalled.write_all(HALF_HEAD).await.unwrap();
    let started = Instant::now();
    let (answer, closed) = read_all(&mut stalled, Duration::from_secs(10)).await;
    assert!(closed, "a client sending half a head held its connection for 10 s");
    assert!(started.elapsed() < Duration::from_secs(5), "closed only after {:?}", started.elapsed());
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_gets_408_at_the_request_timeout() {
    let served = serve(quick(Duration::from_secs(10), Duration::from_millis(500))).await;
    let mut slow = TcpStream::connect(served.addr).await.unwrap();
    let head = format!(
        "POST /v1/check HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\":",
        served.app.app_key
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (answer, closed) = read_all(&mut slow, Duration::from_secs(10)).await;
    assert!(closed, "a stalled body held its connection for 10 s");
    assert!(started.elapsed() < Duration::from_secs(5), "answered only after {:?}", started.elapsed());
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"request_timeout""#), "a 408 is an ErrorBody like every error: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_half_open_connections_do_not_starve_a_normal_client() {
    let served = serve(quick(Duration::from_secs(5), Duration::from_secs(30))).await;
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(served.addr).await.unwrap();
        s.write_all(HALF_HEAD).await.unwrap();
        stalled.push(s);
    }
    // All 300 are accepted and held (below the default cap of 1,024)…
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = served.app.state.metrics.render(0);
        let open = metrics
            .lines()
            .find_map(|l| l.strip_prefix("warden_http_connections "))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
        if open >= 300 {
            break;
        }
        assert!(Instant::now() < deadline, "only {open} connections accepted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // …and a normal client is still answered at once.
    assert!(health(served.addr, Duration::from_secs(3)).await.is_some(), "a normal client was starved");
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_clients_wait_for_a_slot_and_are_then_served() {
    let limits = Limits { max_connections: 4, ..quick(Duration::from_secs(30), Duration::from_secs(30)) };
    let served = serve(limits).await;
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(served.addr).await.unwrap();
        s.write_all(HALF_HEAD).await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A fifth client connects (the kernel's backlog takes it) but is not
    // served while every slot is held…
    let mut waiting = TcpStream::connect(served.addr).await.unwrap();
    waiting.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let (early, closed) = read_all(&mut waiting, Duration::from_millis(700)).await;
    assert!(!closed && early.is_empty(), "served past the cap: {early}");
    // …and is served as soon as one frees.
    drop(stalled.pop());
    let (answer, closed) = read_all(&mut waiting, Duration::from_secs(5)).await;
    assert!(closed && answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_within_the_grace_whatever_the_clients_do() {
    // Timeouts far longer than the grace: only the grace can end these.
    let limits = Limits {
        shutdown_grace: Duration::from_millis(500),
        ..quick(Duration::from_secs(60), Duration::from_secs(60))
    };
    let mut served = serve(limits).await;
    let mut half_head = TcpStream::connect(served.addr).await.unwrap();
    half_head.write_all(HALF_HEAD).await.unwrap();
    let mut slow_body = TcpStream::connect(served.addr).await.unwrap();
    let head = format!(
        "POST /v1/check HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Length: 100\r\n\r\n{{",
        served.app.app_key
    );
    slow_body.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let _ = served.stop.take().unwrap().send(());
    let closed_abruptly = tokio::time::timeout(Duration::from_secs(10), served.task).await;
    let closed_abruptly = closed_abruptly.expect("shutdown did not finish within 10 s").unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "shutdown took {:?}", started.elapsed());
    assert!(closed_abruptly >= 1, "the stalled body's request was in flight");
    // The listening socket is closed: new clients are refused.
    assert!(TcpStream::connect(served.addr).await.is_err());
}
