//! A small HTTP/1.1 client for a runtime's API on a unix socket: one `GET` per connection
//! (`Connection: close`), a deadline over connect, write and read, a cap on the body.
//!
//! Header parsing and chunk sizes are `httparse`'s; the socket and body framing
//! (Content-Length, chunked, or to the end) are here. An async stack (hyper, tokio) would be
//! many times the size of everything nsring asks a runtime.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The most a response body may hold (a listing of thousands of containers fits).
const MAX_BODY: usize = 64 << 20;

/// A response: the status code and the whole body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a request failed.
#[derive(Debug)]
pub enum HttpError {
    /// The socket could not be connected (absent, refused, no permission).
    Connect(io::Error),
    /// No complete answer before the deadline.
    Timeout,
    /// Reading or writing failed after connecting.
    Io(io::Error),
    /// The answer is not HTTP/1.1 as expected.
    Malformed(String),
}

/// `GET path` on the unix socket `socket`; everything must be done within `timeout`.
pub fn get(socket: &Path, path: &str, timeout: Duration) -> Result<Response, HttpError> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(socket, timeout)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: nsring/{}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(HttpError::Io)?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| timeout_or(e, HttpError::Io))?;
    let mut buf = Vec::with_capacity(16 << 10);
    let mut chunk = [0u8; 16 << 10];
    loop {
        if let Some(resp) = parse(&buf, false)? {
            return Ok(resp);
        }
        stream
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(HttpError::Io)?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return parse(&buf, true)?.ok_or_else(|| {
                    HttpError::Malformed(
                        "the connection closed before the answer was complete".into(),
                    )
                });
            }
            Ok(n) => {
                if buf.len() + n > MAX_BODY {
                    return Err(HttpError::Malformed(format!(
                        "the answer is larger than {} MiB",
                        MAX_BODY >> 20
                    )));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(timeout_or(e, HttpError::Io)),
        }
    }
}

/// Connects with a timeout: a server whose listen queue is full would block `connect(2)`.
fn connect(socket: &Path, timeout: Duration) -> Result<UnixStream, HttpError> {
    let addr = socket2::SockAddr::unix(socket).map_err(HttpError::Connect)?;
    let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)
        .map_err(HttpError::Connect)?;
    s.connect_timeout(&addr, timeout)
        .map_err(|e| timeout_or(e, HttpError::Connect))?;
    Ok(UnixStream::from(std::os::fd::OwnedFd::from(s)))
}

fn remaining(deadline: Instant) -> Result<Duration, HttpError> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(HttpError::Timeout)
}

fn timeout_or(e: io::Error, other: fn(io::Error) -> HttpError) -> HttpError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout,
        _ => other(e),
    }
}

/// The response in `buf` if it is complete (`eof`: the server closed the connection).
pub(crate) fn parse(buf: &[u8], eof: bool) -> Result<Option<Response>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HttpError::Malformed(format!("bad HTTP header: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let body = &buf[head_len..];
    if header("transfer-encoding").is_some_and(|t| t.ends_with("chunked")) {
        return Ok(dechunk(body)?.map(|body| Response { status, body }));
    }
    if let Some(len) = header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| HttpError::Malformed(format!("bad Content-Length '{len}'")))?;
        if len > MAX_BODY {
            return Err(HttpError::Malformed(format!("a body of {len} bytes")));
        }
        return Ok((body.len() >= len).then(|| Response {
            status,
            body: body[..len].to_vec(),
        }));
    }
    // 1xx, 204 and 304 have no body; anything else without a length ends with the connection.
    if status == 204 || status == 304 || (100..200).contains(&status) || eof {
        return Ok(Some(Response {
            status,
            body: body.to_vec(),
        }));
    }
    Ok(None)
}

/// Decodes a chunked body; `None` while it is incomplete.
pub(crate) fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut out = Vec::new();
    loop {
        let (size_len, size) = match httparse::parse_chunk_size(data) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(HttpError::Malformed("bad chunk size".into())),
        };
        let size = usize::try_from(size)
            .ok()
            .filter(|s| out.len() + s <= MAX_BODY)
            .ok_or_else(|| HttpError::Malformed("a chunk too large".into()))?;
        data = &data[size_len..];
        if size == 0 {
            // Trailers (rare) end with an empty line; the body is complete either way once
            // the last-chunk line is here, as far as we are concerned.
            return Ok(Some(out));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        if &data[size..size + 2] != b"\r\n" {
            return Err(HttpError::Malformed("a chunk without its CRLF".into()));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: Option<Response>) -> (u16, String) {
        let r = r.expect("complete");
        (r.status, String::from_utf8(r.body).unwrap())
    }

    #[test]
    fn content_length() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n[1,2,3]";
        assert_eq!(body(parse(full, false).unwrap()), (200, "[1,2,3]".into()));
        assert!(parse(&full[..full.len() - 1], false).unwrap().is_none());
        assert!(parse(&full[..20], false).unwrap().is_none());
    }

    #[test]
    fn chunked() {
        let full = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n\
            4\r\n{\"me\r\n11\r\nssage\":\"no such\"}\r\n0\r\n\r\n";
        assert_eq!(
            body(parse(full, false).unwrap()),
            (404, "{\"message\":\"no such\"}".into())
        );
        for cut in [60, 70, full.len() - 6] {
            assert!(parse(&full[..cut], false).unwrap().is_none(), "{cut}");
        }
        assert!(matches!(
            dechunk(b"4\r\nabcdX\r\n0\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(dechunk(b"zz\r\n"), Err(HttpError::Malformed(_))));
    }

    #[test]
    fn until_close_and_garbage() {
        let r = b"HTTP/1.1 200 OK\r\n\r\nhello";
        assert!(parse(r, false).unwrap().is_none());
        assert_eq!(body(parse(r, true).unwrap()), (200, "hello".into()));
        assert!(matches!(
            parse(b"SSH-2.0-OpenSSH\r\n\r\n", true),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", true),
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        let dir = std::env::temp_dir().join(format!("nsring-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("hang.sock");
        let _ = std::fs::remove_file(&sock);
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let start = Instant::now();
        let r = get(&sock, "/containers/json", Duration::from_millis(300));
        assert!(matches!(r, Err(HttpError::Timeout)), "{r:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        let missing = get(&dir.join("none.sock"), "/", Duration::from_secs(1));
        assert!(matches!(missing, Err(HttpError::Connect(_))), "{missing:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
