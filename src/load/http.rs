//! The load generator's HTTP/1.1 client: the request is serialized once and written as is;
//! the response head is parsed with `httparse`, the body read by Content-Length, chunked
//! encoding, or to the connection's close, and discarded. Plain TCP or TLS (rustls, web PKI
//! roots). Small on purpose: it sits on the generator's hot path.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use rustix::io::Errno;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const EINPROGRESS: i32 = Errno::INPROGRESS.raw_os_error();
const ENOTCONN: i32 = Errno::NOTCONN.raw_os_error();

/// Why a request did not get an expected answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Refused,
    Timeout,
    Reset,
    Status,
    OutOfPorts,
    /// Scheduled but never sent: the in-flight limit was reached.
    Unsent,
    Other,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 7] =
        [ErrorClass::Refused, ErrorClass::Timeout, ErrorClass::Reset, ErrorClass::Status, ErrorClass::OutOfPorts, ErrorClass::Unsent, ErrorClass::Other];

    pub fn of(e: &io::Error) -> ErrorClass {
        use io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => ErrorClass::Refused,
            ConnectionReset | BrokenPipe | UnexpectedEof | ConnectionAborted => ErrorClass::Reset,
            AddrNotAvailable | AddrInUse => ErrorClass::OutOfPorts,
            TimedOut => ErrorClass::Timeout,
            _ => ErrorClass::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Refused => "refused",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Reset => "reset",
            ErrorClass::Status => "status",
            ErrorClass::OutOfPorts => "out_of_ports",
            ErrorClass::Unsent => "unsent",
            ErrorClass::Other => "other",
        }
    }
}

/// Where requests go, resolved once.
pub struct Target {
    pub addr: SocketAddr,
    tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
    /// The request with keep-alive, and with `Connection: close`.
    keep: Vec<u8>,
    close: Vec<u8>,
    head: bool,
}

pub struct RequestSpec<'a> {
    pub url: &'a url::Url,
    pub method: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Target {
    pub async fn resolve(r: &RequestSpec<'_>) -> Result<Target, String> {
        let url = r.url;
        let host = url.host_str().ok_or_else(|| format!("{url}: no host"))?.to_string();
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            s => return Err(format!("{url}: scheme `{s}` is not http or https")),
        };
        let port = url.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address"))?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let build = |close: bool| {
            let mut s = format!("{} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: flow-loadtest\r\n", r.method);
            for (k, v) in r.headers {
                s.push_str(&format!("{k}: {v}\r\n"));
            }
            if !r.body.is_empty() {
                s.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
            }
            if close {
                s.push_str("Connection: close\r\n");
            }
            s.push_str("\r\n");
            let mut b = s.into_bytes();
            b.extend_from_slice(r.body);
            b
        };
        let tls = if tls {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| format!("{host}: {e}"))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Target { addr, tls, keep: build(false), close: build(true), head: r.method.eq_ignore_ascii_case("HEAD") })
    }

    /// Open a connection and, on plain TCP, send as much of the request as the socket takes at
    /// once: returns the connection and how many bytes of `request(keepalive)` went out.
    /// On loopback the handshake is done by the time `connect` returns, so the request leaves
    /// in the same turn, without waiting for the event loop to report the socket writable.
    /// `nodelay` only matters for a connection that carries several requests: on a fresh one
    /// the single request goes out in one write, and the system call is saved.
    pub async fn connect(&self, keepalive: bool) -> io::Result<(Conn, usize)> {
        let sock = Socket::new(Domain::for_address(self.addr), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
        if keepalive {
            sock.set_tcp_nodelay(true)?;
        }
        match sock.connect(&self.addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let early = if self.tls.is_none() {
            match sock.send(self.request(keepalive)) {
                Ok(n) => n,
                // Not connected yet: wait for it below.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(ENOTCONN) => 0,
                Err(e) => return Err(e),
            }
        } else {
            0
        };
        let tcp = TcpStream::from_std(std::net::TcpStream::from(sock))?;
        if early == 0 {
            tcp.writable().await?;
            if let Some(e) = tcp.take_error()? {
                return Err(e);
            }
        }
        match &self.tls {
            None => Ok((Conn::Plain(tcp), early)),
            Some((c, name)) => Ok((Conn::Tls(Box::new(c.connect(name.clone(), tcp).await?)), 0)),
        }
    }

    pub fn request(&self, keepalive: bool) -> &[u8] {
        if keepalive {
            &self.keep
        } else {
            &self.close
        }
    }
}

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// What came back.
pub struct Answer {
    pub status: u16,
    /// May the connection carry another request?
    pub reusable: bool,
}

/// One request on an open connection: write what `sent` (bytes already written) leaves of
/// it, read the whole response.
pub async fn exchange(conn: &mut Conn, target: &Target, keepalive: bool, buf: &mut BytesMut, sent: usize) -> io::Result<Answer> {
    let req = &target.request(keepalive)[sent..];
    match conn {
        Conn::Plain(s) => exchange_on(s, req, target.head, buf).await,
        Conn::Tls(s) => exchange_on(s.as_mut(), req, target.head, buf).await,
    }
}

async fn fill<S: AsyncRead + Unpin>(s: &mut S, buf: &mut BytesMut) -> io::Result<()> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(8192);
    }
    if s.read_buf(buf).await? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-response"));
    }
    Ok(())
}

async fn exchange_on<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, req: &[u8], head: bool, buf: &mut BytesMut) -> io::Result<Answer> {
    s.write_all(req).await?;
    buf.clear();
    let (status, header_len, length, chunked, close) = loop {
        fill(s, buf).await?;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let mut length = None;
                let mut chunked = false;
                let mut close = resp.version == Some(0);
                for h in resp.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        length = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        chunked = h.value.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked"));
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        close = h.value.eq_ignore_ascii_case(b"close");
                    }
                }
                break (resp.code.unwrap_or(0), n, length, chunked, close);
            }
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad response: {e}"))),
        }
    };
    buf.advance(header_len);
    let bodiless = head || status == 204 || status == 304 || (100..200).contains(&status);
    if bodiless {
    } else if chunked {
        loop {
            let (size, used) = loop {
                match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => break (size as usize, used),
                    Ok(httparse::Status::Partial) => fill(s, buf).await?,
                    Err(_) => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")),
                }
            };
            buf.advance(used);
            // chunk data and its CRLF; the last chunk is followed by (trailers and) CRLF.
            while buf.len() < size + 2 {
                fill(s, buf).await?;
            }
            buf.advance(size + 2);
            if size == 0 {
                break;
            }
        }
    } else if let Some(n) = length {
        while buf.len() < n {
            fill(s, buf).await?;
        }
        buf.advance(n);
    } else {
        // Delimited by the close.
        loop {
            buf.clear();
            if s.read_buf(buf).await? == 0 {
                break;
            }
        }
        return Ok(Answer { status, reusable: false });
    }
    Ok(Answer { status, reusable: !close })
}

/// Connect (and send what the socket takes at once), timing it.
pub async fn timed_connect(target: &Target, keepalive: bool) -> (io::Result<(Conn, usize)>, Duration) {
    let t = Instant::now();
    let c = target.connect(keepalive).await;
    (c, t.elapsed())
}
