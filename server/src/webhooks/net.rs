//! The outbound HTTP client for deliveries, with the safety rules for a
//! URL an admin typed: `http` and `https` only; every request bounded by a
//! timeout (connect, send and the read of the answer together); redirects
//! never followed (a 3xx is a failed delivery); at most
//! [`RESPONSE_CAP`] bytes of an answer read; and addresses that are not
//! public (loopback, private ranges, link-local, carrier-grade NAT,
//! unique-local, multicast, unspecified) refused unless
//! `webhook_allow_private` is set. The check is made on the addresses a
//! name resolves to, by the resolver the connector uses, so a name that
//! resolves differently between a check and the connection (DNS
//! rebinding) can't slip through; IP literals, which the connector does
//! not resolve, are checked before the request.
//!
//! hyper-util's client (hyper is already the server's HTTP stack) with
//! hyper-rustls for `https` (ring, the Mozilla roots from webpki-roots: no
//! OpenSSL, no system store), rather than reqwest: reqwest would bring the
//! same pieces plus cookie, redirect, proxy and encoding layers Warden must
//! turn off anyway.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

/// Most bytes of an answer read (the rest is not waited for).
pub const RESPONSE_CAP: usize = 64 * 1024;

/// Why a delivery attempt failed before an HTTP status came back.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The URL is not `http` or `https`, or has no host.
    #[error("the URL must be http:// or https:// with a host")]
    BadUrl,
    /// The address is not public and private addresses are not allowed.
    #[error("refused: {0} is not a public address (set webhook_allow_private to allow it)")]
    Private(IpAddr),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting or exchanging failed.
    #[error("{0}")]
    Http(String),
}

/// What one request got.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The HTTP status.
    pub status: u16,
    /// Time from the start of the request to the end of the answer read.
    pub latency: Duration,
}

/// Resolves names, keeping only the addresses deliveries may go to.
#[derive(Debug, Clone)]
struct GuardedResolver {
    allow_private: bool,
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.iter().copied().filter(|a| allow_private || is_public(a.ip())).collect();
            if allowed.is_empty() {
                let which = found.first().map_or_else(|| "no address".to_owned(), |a| a.ip().to_string());
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "refused: the host resolves to {which}, not a public address (set webhook_allow_private to allow it)"
                    ),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

/// Whether `ip` is a public unicast address. Hand-written because the
/// standard library's `is_global` is not stable.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
                || (a == 198 && (18..20).contains(&b)) // benchmarking
                || a >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments().first().copied().unwrap_or(0);
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments().get(1) == Some(&0x0db8)) // documentation
        }
    }
}

/// The client deliveries use.
#[derive(Debug, Clone)]
pub struct Client {
    inner: HyperClient<hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    allow_private: bool,
    timeout: Duration,
}

impl Client {
    /// A client with the given rules.
    pub fn new(allow_private: bool, timeout: Duration) -> Self {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { allow_private });
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = HyperClient::builder(TokioExecutor::new()).build(https);
        Self { inner, allow_private, timeout }
    }

    /// Checks a URL against the rules that can be checked without
    /// resolving it: the scheme, a host, and an IP literal's range.
    ///
    /// # Errors
    /// [`SendError::BadUrl`] or [`SendError::Private`].
    pub fn check_url(url: &url::Url, allow_private: bool) -> Result<(), SendError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SendError::BadUrl);
        }
        let ip = match url.host() {
            None => return Err(SendError::BadUrl),
            Some(url::Host::Domain(_)) => None,
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        };
        match ip {
            Some(ip) if !allow_private && !is_public(ip) => Err(SendError::Private(ip)),
            _ => Ok(()),
        }
    }

    /// POSTs `body` (JSON) to `url` with `headers`, and reads at most
    /// [`RESPONSE_CAP`] bytes of the answer, all within the timeout.
    ///
    /// # Errors
    /// [`SendError`] when no HTTP status came back.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> Result<Sent, SendError> {
        let parsed = url::Url::parse(url).map_err(|_| SendError::BadUrl)?;
        Self::check_url(&parsed, self.allow_private)?;
        let mut req = axum::http::Request::post(url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("warden-webhooks/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        let req = req.body(Full::new(body)).map_err(|e| SendError::Http(e.to_string()))?;
        let started = Instant::now();
        let exchange = async {
            let response = self.inner.request(req).await.map_err(|e| SendError::Http(error_chain(&e)))?;
            let status = response.status().as_u16();
            // The answer is read (up to the cap) so the connection can be
            // reused; what it says is not kept.
            let _ = Limited::new(response.into_body(), RESPONSE_CAP).collect().await;
            Ok(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(status)) => Ok(Sent { status, latency: started.elapsed() }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SendError::Timeout(self.timeout)),
        }
    }
}

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly

    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_must_be_http_with_a_public_host_unless_allowed() {
        let check = |u: &str, allow| Client::check_url(&url::Url::parse(u).unwrap(), allow);
        assert!(check("https://example.com/hook", false).is_ok());
        assert!(check("http://93.184.216.34/hook", false).is_ok());
        assert!(matches!(check("ftp://example.com/x", false), Err(SendError::BadUrl)));
        assert!(matches!(check("file:///etc/passwd", true), Err(SendError::BadUrl)));
        assert!(matches!(check("http://127.0.0.1:9/x", false), Err(SendError::Private(_))));
        assert!(matches!(check("http://[::1]:9/x", false), Err(SendError::Private(_))));
        assert!(check("http://127.0.0.1:9/x", true).is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_to_loopback_are_refused() {
        let client = Client::new(false, Duration::from_secs(2));
        let err = client.post("http://localhost:9/hook", &[], Bytes::new()).await.unwrap_err();
        assert!(err.to_string().contains("not a public address"), "{err}");
        let err = client.post("http://127.0.0.1:9/hook", &[], Bytes::new()).await.unwrap_err();
        assert!(matches!(err, SendError::Private(_)), "{err}");
    }
}
