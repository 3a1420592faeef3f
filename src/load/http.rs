//! The load generator's HTTP/1.1 client: the request is serialized once and written as is;
//! the response head is parsed with `httparse`, the body read by Content-Length, chunked
//! encoding, or to the connection's close, and discarded. Plain TCP or TLS (rustls, web PKI
//! roots). Small on purpose: it sits on the generator's hot path.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use rustix::io::Errno;
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
    pub const ALL: [ErrorClass; 7] = [
        ErrorClass::Refused,
        ErrorClass::Timeout,
        ErrorClass::Reset,
        ErrorClass::Status,
        ErrorClass::OutOfPorts,
        ErrorClass::Unsent,
        ErrorClass::Other,
    ];

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
    pub async fn resolve(r: &RequestSpec<'_>) -> Result<Target, super::Error> {
        use super::Error::Target as BadTarget;
        let url = r.url;
        let host = url.host_str().ok_or_else(|| BadTarget(format!("{url}: no host")))?.to_string();
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            s => return Err(BadTarget(format!("{url}: scheme `{s}` is not http or https"))),
        };
        let port = url.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| BadTarget(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| BadTarget(format!("{host} resolves to no address")))?;
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
            let config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| BadTarget(e.to_string()))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            let name =
                rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| BadTarget(format!("{host}: {e}")))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Target { addr, tls, keep: build(false), close: build(true), head: r.method.eq_ignore_ascii_case("HEAD") })
    }

    /// Start a connection and, on plain TCP, send as much of the request as the socket takes at
    /// once: returns the socket and how many bytes of `request(keepalive)` went out. On
    /// loopback the handshake is done by the time `connect` returns, so the request leaves in
    /// the same turn, without waiting for the event loop to report the socket writable.
    /// `nodelay` only matters for a connection that carries several requests: on a fresh one
    /// the single request goes out in one write, and the system call is saved. `stamped`: the
    /// kernel stamps what arrives (see [`Stamped`]).
    pub fn open(&self, keepalive: bool, stamped: bool) -> io::Result<(Socket, usize)> {
        let sock =
            Socket::new(Domain::for_address(self.addr), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
        if keepalive {
            sock.set_tcp_nodelay(true)?;
        }
        if stamped {
            Stamped::enable(&sock)?;
        }
        match sock.connect(&self.addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let early = if self.tls.is_none() {
            match sock.send(self.request(keepalive)) {
                Ok(n) => n,
                // Not connected yet: wait for it in `finish`.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(ENOTCONN) => 0,
                Err(e) => return Err(e),
            }
        } else {
            0
        };
        Ok((sock, early))
    }

    /// Hand a socket from `open` to the event loop: wait for the handshake unless the request
    /// already went out, then (for https) the TLS handshake.
    pub async fn finish(&self, sock: Socket, early: usize) -> io::Result<Conn> {
        let tcp = TcpStream::from_std(std::net::TcpStream::from(sock))?;
        if early == 0 {
            tcp.writable().await?;
            if let Some(e) = tcp.take_error()? {
                return Err(e);
            }
        }
        match &self.tls {
            None => Ok(Conn::Plain(tcp)),
            Some((c, name)) => Ok(Conn::Tls(Box::new(c.connect(name.clone(), tcp).await?))),
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn is_head(&self) -> bool {
        self.head
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
/// it, read until `buf` (which may hold the start of the answer) holds the whole response,
/// and consume it.
pub async fn exchange(
    conn: &mut Conn,
    target: &Target,
    keepalive: bool,
    buf: &mut BytesMut,
    sent: usize,
) -> io::Result<Answer> {
    let req = &target.request(keepalive)[sent..];
    match conn {
        Conn::Plain(s) => exchange_on(s, req, target.head, buf).await,
        Conn::Tls(s) => exchange_on(s.as_mut(), req, target.head, buf).await,
    }
}

async fn exchange_on<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    req: &[u8],
    head: bool,
    buf: &mut BytesMut,
) -> io::Result<Answer> {
    if !req.is_empty() {
        s.write_all(req).await?;
    }
    let mut eof = false;
    loop {
        if let Some(a) = take(buf, head, eof)? {
            return Ok(a);
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        eof = s.read_buf(buf).await? == 0;
    }
}

/// Take the response at the start of `buf` if it is all there (`None` while it is not).
/// `eof`: the server has closed the connection, which ends a body that has no length.
pub fn take(buf: &mut BytesMut, head: bool, eof: bool) -> io::Result<Option<Answer>> {
    let truncated = || io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-response");
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if eof => return Err(truncated()),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad response: {e}"))),
    };
    let (mut length, mut chunked, mut close) = (None, false, resp.version == Some(0));
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    let status = resp.code.unwrap_or(0);
    let incomplete = || if eof { Err(truncated()) } else { Ok(None) };
    let len = if head || status == 204 || status == 304 || (100..200).contains(&status) {
        head_len
    } else if chunked {
        let mut at = head_len;
        loop {
            let (used, size) = match httparse::parse_chunk_size(&buf[at..]) {
                Ok(httparse::Status::Complete((used, size))) => (used, usize::try_from(size).unwrap_or(usize::MAX)),
                Ok(httparse::Status::Partial) => return incomplete(),
                Err(_) => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")),
            };
            // Chunk data and its CRLF; the last chunk is followed by (trailers and) CRLF.
            let end = at.saturating_add(used).saturating_add(size).saturating_add(2);
            if buf.len() < end {
                return incomplete();
            }
            at = end;
            if size == 0 {
                break at;
            }
        }
    } else if let Some(n) = length {
        if buf.len() < head_len.saturating_add(n) {
            return incomplete();
        }
        head_len + n
    } else if eof {
        // Delimited by the close.
        buf.clear();
        return Ok(Some(Answer { status, reusable: false }));
    } else {
        return Ok(None);
    };
    buf.advance(len);
    Ok(Some(Answer { status, reusable: !close && !eof }))
}

/// Reads that carry the time the data reached the machine, stamped by the kernel
/// (`SO_TIMESTAMPNS`), for a socket kept out of the event loop: its answer is read some time
/// after it arrived, and timed by the stamp, not by the read.
pub struct Stamped {
    cmsg: Vec<u8>,
}

impl Default for Stamped {
    fn default() -> Stamped {
        Stamped { cmsg: nix::cmsg_space!(nix::sys::time::TimeSpec) }
    }
}

impl Stamped {
    /// Ask the kernel to stamp what arrives on `sock`.
    pub fn enable<S: std::os::fd::AsFd>(sock: &S) -> io::Result<()> {
        nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
            .map_err(io::Error::from)
    }

    /// A socket that keeps receive stamps switched on for as long as it is open. The kernel
    /// switches them on for the whole system with the first socket that asks and off with the
    /// last one's close, patching its own code each time; with a new connection per request
    /// that would happen for every request, unless one socket holds them on for the run.
    pub fn hold() -> io::Result<Socket> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM.cloexec(), None)?;
        Stamped::enable(&s)?;
        Ok(s)
    }

    /// Read what has arrived on `sock`, without waiting, and take the response if it is all
    /// there, with the stamp of its last bytes. `None`: not all there yet (what was read stays
    /// in `buf`).
    pub fn answer(
        &mut self,
        sock: &Socket,
        buf: &mut BytesMut,
        head: bool,
    ) -> io::Result<Option<(Answer, Option<SystemTime>)>> {
        use nix::errno::Errno;
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let mut stamp = None;
        loop {
            let len = buf.len();
            buf.resize(len + 4096, 0);
            let got = loop {
                let mut iov = [io::IoSliceMut::new(&mut buf[len..])];
                match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut self.cmsg), MsgFlags::MSG_DONTWAIT) {
                    Ok(m) => {
                        let t = m.cmsgs().ok().and_then(|mut c| {
                            c.find_map(|c| match c {
                                ControlMessageOwned::ScmTimestampns(t) => Some(
                                    UNIX_EPOCH + Duration::new(t.tv_sec().max(0) as u64, t.tv_nsec().max(0) as u32),
                                ),
                                _ => None,
                            })
                        });
                        break Ok((m.bytes, t));
                    }
                    Err(Errno::EINTR) => continue,
                    Err(e) => break Err(e),
                }
            };
            match got {
                Ok((n, t)) => {
                    buf.truncate(len + n);
                    stamp = t.or(stamp);
                    if let Some(a) = take(buf, head, n == 0)? {
                        return Ok(Some((a, stamp)));
                    }
                }
                Err(e) => {
                    buf.truncate(len);
                    return if e == Errno::EAGAIN { Ok(None) } else { Err(e.into()) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn taken(raw: &str, head: bool, eof: bool) -> io::Result<Option<(u16, bool, usize)>> {
        let mut buf = BytesMut::from(raw);
        Ok(take(&mut buf, head, eof)?.map(|a| (a.status, a.reusable, buf.len())))
    }

    #[test]
    fn a_response_is_taken_when_all_of_it_is_there() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(taken(ok, false, false).unwrap(), Some((200, true, 0)));
        // What follows is left for the next response.
        assert_eq!(taken(&format!("{ok}HTTP/1.1"), false, false).unwrap(), Some((200, true, 8)));
        assert_eq!(taken(&ok[..ok.len() - 1], false, false).unwrap(), None);
        assert_eq!(taken("HTTP/1.1 200 OK\r\nContent-Le", false, false).unwrap(), None);
        let chunked = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(taken(chunked, false, false).unwrap(), Some((201, true, 0)));
        assert_eq!(taken(&chunked[..chunked.len() - 2], false, false).unwrap(), None);
        let close = "HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(taken(close, false, false).unwrap(), Some((503, false, 0)));
        // No length: the body ends with the connection.
        let until_close = "HTTP/1.0 200 OK\r\n\r\nbody";
        assert_eq!(taken(until_close, false, false).unwrap(), None);
        assert_eq!(taken(until_close, false, true).unwrap(), Some((200, false, 0)));
        // HEAD and 204 have no body, whatever the length says.
        assert_eq!(taken("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", true, false).unwrap(), Some((200, true, 0)));
        assert_eq!(taken("HTTP/1.1 204 No Content\r\n\r\n", false, false).unwrap(), Some((204, true, 0)));
    }

    #[test]
    fn a_cut_or_bad_response_is_an_error_of_its_class() {
        let cut = taken("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", false, true).unwrap_err();
        assert_eq!(ErrorClass::of(&cut), ErrorClass::Reset);
        assert_eq!(ErrorClass::of(&taken("HTTP/1.1 200 OK\r\n", false, true).unwrap_err()), ErrorClass::Reset);
        let bad = taken("SMTP ready\r\n\r\n", false, false).unwrap_err();
        assert_eq!(bad.kind(), io::ErrorKind::InvalidData);
        let chunk = taken("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, false).unwrap_err();
        assert_eq!(chunk.kind(), io::ErrorKind::InvalidData);
        // A chunk size near the top of the range does not overflow.
        assert_eq!(
            taken("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", false, false).unwrap(),
            None
        );
    }

    /// The answer on a stamped socket is timed when it reached the machine, not when it is read.
    #[tokio::test]
    async fn a_stamped_answer_carries_its_arrival_time() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = url::Url::parse(&format!("http://{}/x", server.local_addr().unwrap())).unwrap();
        let target = Target::resolve(&RequestSpec { url: &url, method: "GET", headers: &[], body: &[] }).await.unwrap();
        let _hold = Stamped::hold().unwrap();
        let (sock, early) = target.open(false, true).unwrap();
        assert_eq!(early, target.request(false).len(), "on loopback the request leaves with the connect");
        let (mut peer, _) = server.accept().unwrap();
        let mut req = vec![0; early];
        peer.read_exact(&mut req).unwrap();
        assert!(req.ends_with(b"Connection: close\r\n\r\n"));

        let (mut stamped, mut buf) = (Stamped::default(), BytesMut::new());
        assert!(stamped.answer(&sock, &mut buf, false).unwrap().is_none(), "nothing has come yet");
        peer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(stamped.answer(&sock, &mut buf, false).unwrap().is_none(), "the body is missing");
        peer.write_all(b"ok").unwrap();
        let written = SystemTime::now();
        std::thread::sleep(Duration::from_millis(30));
        let (a, stamp) = stamped.answer(&sock, &mut buf, false).unwrap().expect("all there");
        assert_eq!((a.status, buf.len()), (200, 0));
        let stamp = stamp.expect("the kernel stamped it");
        let off = |a: SystemTime, b: SystemTime| a.duration_since(b).unwrap_or_else(|e| e.duration());
        assert!(off(stamp, written) < Duration::from_millis(10), "stamped {:?} from the write", off(stamp, written));
        assert!(
            SystemTime::now().duration_since(stamp).unwrap() >= Duration::from_millis(30),
            "the stamp is the arrival, not the read"
        );
    }
}
