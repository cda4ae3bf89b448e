//! HTTP/1.1 framing for the health gates and the etcd gateway: the status line and headers of
//! an answer (parsed by `httparse`), and its body by Content-Length, chunked coding or close.
//!
//! Pure over any [`BufRead`]: [`crate::sys::tls`] hands it a TLS stream, the tests a byte slice.
//! Every answer is bounded: `MAX_HEAD` for the head, [`MAX_BODY`] for a body read into memory,
//! a caller-given maximum for a body read as it arrives (`BodyReader`).

use std::io::{self, BufRead, Read};

/// Largest HTTP response body read into memory ([`crate::sys::tls::https_request`]).
pub const MAX_BODY: usize = 1024 * 1024;
/// Largest HTTP response head (status line and headers).
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// How many bytes of a non-TLS answer to quote in errors.
pub(crate) const QUOTE_BYTES: usize = 64;

pub(crate) fn quote(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(QUOTE_BYTES)];
    let mut text = format!("{:?}", String::from_utf8_lossy(shown));
    if bytes.len() > QUOTE_BYTES {
        text.push('…');
    }
    text
}

pub(crate) enum HttpFailure {
    Io(io::Error),
    Protocol(String),
}

impl From<io::Error> for HttpFailure {
    fn from(e: io::Error) -> Self {
        HttpFailure::Io(e)
    }
}

/// Reads one line (up to `limit` bytes) without its line ending; `None` at end of stream.
fn read_line<R: BufRead>(
    r: &mut R,
    limit: usize,
    what: &str,
) -> Result<Option<String>, HttpFailure> {
    let mut line = Vec::new();
    let n = r.take(limit as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        if line.len() > limit {
            return Err(HttpFailure::Protocol(format!(
                "{what} longer than {limit} bytes"
            )));
        }
        return Err(HttpFailure::Protocol(format!(
            "the response ended in the middle of {what} {}",
            quote(&line)
        )));
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

pub(crate) fn read_response<R: BufRead>(
    r: &mut R,
    method: &str,
) -> Result<(u16, Vec<u8>), HttpFailure> {
    let (status, framing) = read_head(r, method)?;
    let body = match framing {
        Framing::Empty => Vec::new(),
        Framing::Chunked => read_chunked(r)?,
        Framing::Length(n) => read_exact_body(r, usize::try_from(n).unwrap_or(usize::MAX))?,
        Framing::ToClose => {
            let mut body = Vec::new();
            r.take(MAX_BODY as u64 + 1).read_to_end(&mut body)?;
            if body.len() > MAX_BODY {
                return Err(too_big());
            }
            body
        }
    };
    Ok((status, body))
}

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (HEAD, 204, 304, 101).
    Empty,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length`.
    Length(u64),
    /// Read until the server closes.
    ToClose,
}

/// The status line and headers of the final response (interim 1xx ones skipped), and how its
/// body is delimited.
pub(crate) fn read_head<R: BufRead>(
    r: &mut R,
    method: &str,
) -> Result<(u16, Framing), HttpFailure> {
    loop {
        let (status, headers) = read_one_head(r)?;
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        for (name, value) in &headers {
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            } else if name.eq_ignore_ascii_case("content-length") {
                let n = value.parse::<usize>().map_err(|_| {
                    HttpFailure::Protocol(format!("Content-Length {value:?} is not a number"))
                })?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(HttpFailure::Protocol(
                        "conflicting Content-Length headers".to_string(),
                    ));
                }
                content_length = Some(n);
            }
        }

        if (100..200).contains(&status) && status != 101 {
            continue; // interim response (100 Continue …): the real one follows
        }
        if method == "HEAD" || status == 204 || status == 304 || status == 101 {
            return Ok((status, Framing::Empty));
        }
        return Ok((
            status,
            if chunked {
                Framing::Chunked
            } else if let Some(n) = content_length {
                Framing::Length(n as u64)
            } else {
                Framing::ToClose
            },
        ));
    }
}

/// One response head, parsed by httparse: its status code and its header lines (name, value).
/// The status line is judged as soon as it is in, so an answer that is no HTTP says so at once
/// rather than after the blank line it may never send; the header lines are then read up to
/// the blank one, at most [`MAX_HEAD`] bytes in all.
fn read_one_head<R: BufRead>(r: &mut R) -> Result<(u16, Vec<(String, String)>), HttpFailure> {
    let Some(status_line) = read_line(r, MAX_HEAD, "the status line")? else {
        return Err(HttpFailure::Protocol(
            "the server closed the connection without answering".to_string(),
        ));
    };
    let bad_status =
        || HttpFailure::Protocol(format!("status line {}", quote(status_line.as_bytes())));
    // Line endings are normalised to CRLF (a bare LF was always accepted).
    let mut head = format!("{status_line}\r\n").into_bytes();
    // Alone, a well-formed status line is a partial response: httparse wants the headers.
    if httparse::Response::new(&mut []).parse(&head).is_err() {
        return Err(bad_status());
    }
    let mut lines = Vec::new();
    loop {
        let Some(line) = read_line(r, MAX_HEAD, "a header line")? else {
            return Err(HttpFailure::Protocol(
                "the response ended inside its headers".to_string(),
            ));
        };
        head.extend_from_slice(line.as_bytes());
        head.extend_from_slice(b"\r\n");
        if line.is_empty() {
            break;
        }
        if head.len() > MAX_HEAD {
            return Err(HttpFailure::Protocol(format!(
                "response headers longer than {MAX_HEAD} bytes"
            )));
        }
        lines.push(line);
    }
    let mut headers = vec![httparse::EMPTY_HEADER; lines.len()];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(HttpFailure::Protocol(
                "the response ended inside its headers".to_string(),
            ))
        }
        Err(e) => {
            let bad = lines.iter().find(|l| !l.contains(':')).unwrap_or(&lines[0]);
            return Err(HttpFailure::Protocol(format!(
                "header line {} ({e})",
                quote(bad.as_bytes())
            )));
        }
    }
    let status = match response.code {
        Some(code) if (100..=999).contains(&code) => code,
        _ => return Err(bad_status()),
    };
    let headers = response
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).into_owned();
            (h.name.to_string(), value)
        })
        .collect();
    Ok((status, headers))
}

/// The size of a chunk from its size line (extensions ignored), by httparse; `None` when the
/// line is no chunk size.
fn chunk_size(line: &str) -> Option<u64> {
    let text = line.trim_start();
    // httparse reads an empty line as size 0: that is not the last chunk, it is no chunk.
    if !text.starts_with(|c: char| c.is_ascii_hexdigit()) {
        return None;
    }
    let raw = format!("{text}\r\n");
    match httparse::parse_chunk_size(raw.as_bytes()) {
        Ok(httparse::Status::Complete((_, size))) => Some(size),
        _ => None,
    }
}

fn too_big() -> HttpFailure {
    HttpFailure::Protocol(format!("a response body larger than {MAX_BODY} bytes"))
}

fn read_exact_body<R: BufRead>(r: &mut R, n: usize) -> Result<Vec<u8>, HttpFailure> {
    if n > MAX_BODY {
        return Err(too_big());
    }
    let mut body = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut body)?;
    if body.len() < n {
        return Err(HttpFailure::Protocol(format!(
            "the response ended after {} of {n} announced body bytes",
            body.len()
        )));
    }
    Ok(body)
}

fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>, HttpFailure> {
    let mut body = Vec::new();
    loop {
        let Some(line) = read_line(r, 4096, "a chunk size line")? else {
            return Err(HttpFailure::Protocol(
                "the chunked response ended without its final chunk".to_string(),
            ));
        };
        let size = chunk_size(&line).ok_or_else(|| {
            HttpFailure::Protocol(format!("chunk size {}", quote(line.as_bytes())))
        })?;
        if size == 0 {
            // Trailers, up to the empty line; a close right here is tolerated.
            while let Some(trailer) = read_line(r, MAX_HEAD, "a trailer line")? {
                if trailer.is_empty() {
                    break;
                }
            }
            return Ok(body);
        }
        if size > (MAX_BODY - body.len()) as u64 {
            return Err(too_big());
        }
        let chunk = read_exact_body(r, size as usize)?;
        body.extend_from_slice(&chunk);
        match read_line(r, 2, "the line ending after a chunk")? {
            Some(rest) if rest.is_empty() => {}
            _ => {
                return Err(HttpFailure::Protocol(
                    "a chunk is not followed by CRLF".to_string(),
                ))
            }
        }
    }
}

/// A body read as it arrives ([`https_stream`]): the bytes of `framing`, chunked coding
/// removed, at most `max` of them.
pub(crate) struct BodyReader<R> {
    r: R,
    framing: Framing,
    /// Bytes left in the current chunk, or of the Content-Length.
    left: u64,
    /// A chunk's data was read: its CRLF comes before the next size line.
    in_chunks: bool,
    done: bool,
    /// Body bytes handed out.
    pub(crate) read: u64,
    max: u64,
}

fn protocol(detail: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, detail)
}

fn to_io(e: HttpFailure) -> io::Error {
    match e {
        HttpFailure::Io(e) => e,
        HttpFailure::Protocol(d) => protocol(d),
    }
}

impl<R: BufRead> BodyReader<R> {
    pub(crate) fn new(r: R, framing: Framing, max: u64) -> BodyReader<R> {
        BodyReader {
            r,
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            in_chunks: false,
            done: framing == Framing::Empty,
            read: 0,
            max,
        }
    }

    /// Reads up to the next chunk's data; false after the last chunk (and its trailers).
    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.in_chunks {
            match read_line(&mut self.r, 2, "the line ending after a chunk") {
                Ok(Some(rest)) if rest.is_empty() => {}
                Err(HttpFailure::Io(e)) => return Err(e),
                _ => return Err(protocol("a chunk is not followed by CRLF".into())),
            }
        }
        let Some(line) = read_line(&mut self.r, 4096, "a chunk size line").map_err(to_io)? else {
            return Err(protocol(
                "the chunked response ended without its final chunk".into(),
            ));
        };
        let size = chunk_size(&line)
            .ok_or_else(|| protocol(format!("chunk size {}", quote(line.as_bytes()))))?;
        if size == 0 {
            while let Some(trailer) =
                read_line(&mut self.r, MAX_HEAD, "a trailer line").map_err(to_io)?
            {
                if trailer.is_empty() {
                    break;
                }
            }
            return Ok(false);
        }
        if size > self.max - self.read {
            return Err(self.too_big());
        }
        self.in_chunks = true;
        self.left = size;
        Ok(true)
    }

    fn too_big(&self) -> io::Error {
        protocol(format!(
            "a response body larger than the {} bytes accepted",
            self.max
        ))
    }
}

impl<R: BufRead> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.done {
            return Ok(0);
        }
        if self.framing == Framing::Chunked && self.left == 0 && !self.next_chunk()? {
            self.done = true;
            return Ok(0);
        }
        let want = match self.framing {
            Framing::Length(_) | Framing::Chunked => self.left,
            _ => u64::MAX,
        };
        if want == 0 {
            self.done = true;
            return Ok(0);
        }
        let cap = buf.len().min(usize::try_from(want).unwrap_or(usize::MAX));
        let n = self.r.read(&mut buf[..cap])?;
        if n == 0 {
            return match self.framing {
                Framing::Length(total) => Err(protocol(format!(
                    "the response ended after {} of {total} announced body bytes",
                    self.read
                ))),
                Framing::Chunked => Err(protocol(format!(
                    "the response ended inside a chunk ({} bytes of it missing)",
                    self.left
                ))),
                _ => {
                    self.done = true;
                    Ok(0)
                }
            };
        }
        if n as u64 > self.max - self.read {
            return Err(self.too_big());
        }
        self.read += n as u64;
        if matches!(self.framing, Framing::Length(_) | Framing::Chunked) {
            self.left -= n as u64;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn parse(raw: &[u8], method: &str) -> Result<(u16, Vec<u8>), String> {
        let mut r = BufReader::new(raw);
        read_response(&mut r, method).map_err(|e| match e {
            HttpFailure::Io(e) => format!("io: {e}"),
            HttpFailure::Protocol(p) => p,
        })
    }

    #[test]
    fn http_response_parsing() {
        assert_eq!(
            parse(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
                "GET"
            ),
            Ok((200, b"ok".to_vec()))
        );
        assert_eq!(
            parse(
                b"HTTP/1.1 503 Service Unavailable\r\n\r\n[-]etcd failed",
                "GET"
            ),
            Ok((503, b"[-]etcd failed".to_vec()))
        );
        assert_eq!(
            parse(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n1\r\nd\r\n0\r\nX-Trailer: 1\r\n\r\n",
                "GET"
            ),
            Ok((200, b"abcd".to_vec()))
        );
        assert_eq!(
            parse(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
                "POST"
            ),
            Ok((204, Vec::new()))
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD"),
            Ok((200, Vec::new()))
        );
        let truncated = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "GET");
        assert!(
            truncated.clone().unwrap_err().contains("3 of 10"),
            "{truncated:?}"
        );
        let huge = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(parse(huge.as_bytes(), "GET")
            .unwrap_err()
            .contains("larger"));
        let huge_chunk = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            MAX_BODY + 1
        );
        assert!(parse(huge_chunk.as_bytes(), "GET")
            .unwrap_err()
            .contains("larger"));
        assert!(parse(b"SSH-2.0-OpenSSH\r\n", "GET")
            .unwrap_err()
            .contains("status line"));
        assert!(parse(b"", "GET").unwrap_err().contains("without answering"));
        assert!(parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "GET"
        )
        .unwrap_err()
        .contains("chunk size"));
        let endless = vec![b'a'; MAX_BODY + 10];
        let mut raw = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        raw.extend_from_slice(&endless);
        assert!(parse(&raw, "GET").unwrap_err().contains("larger"));
    }

    #[test]
    fn heads_and_chunk_sizes_are_read_by_httparse_with_the_old_leniency() {
        // No reason phrase, bare LF line endings, folded-free headers in any case.
        assert_eq!(
            parse(b"HTTP/1.1 200\r\ncontent-LENGTH:  2 \r\n\r\nok", "GET"),
            Ok((200, b"ok".to_vec()))
        );
        assert_eq!(
            parse(b"HTTP/1.0 404 Not Found\nContent-Length: 1\n\nx", "GET"),
            Ok((404, b"x".to_vec()))
        );
        // Chunk sizes: spaces before an extension, upper-case hex, bare LF.
        assert_eq!(
            parse(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 ;x=y\r\nab\r\nA\n0123456789\n0\n\n",
                "GET"
            ),
            Ok((200, b"ab0123456789".to_vec()))
        );
        let failing: [(&[u8], &str); 5] = [
            (
                b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                "header line \"no colon here\"",
            ),
            (b"HTTP/1.1 099 Low\r\n\r\n", "status line"),
            (b"HTTP/2 200\r\n\r\n", "status line"),
            // httparse reads an empty size line as 0, the last chunk: it is no chunk at all.
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nab\r\n0\r\n\r\n",
                "chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
                "chunk size",
            ),
        ];
        for (raw, words) in failing {
            let got = parse(raw, "GET");
            assert!(
                got.as_ref().is_err_and(|e| e.contains(words)),
                "{:?}: {got:?}",
                String::from_utf8_lossy(raw)
            );
        }
        // A streamed body reads the same chunk sizes.
        assert!(
            stream_body(b"\r\nab\r\n0\r\n\r\n", Framing::Chunked, 100, 4, 4)
                .is_err_and(|e| e.contains("chunk size"))
        );
    }

    /// Reads `body` from `raw` as [`https_stream`] does, the source giving `feed` bytes at a
    /// time and each read asking for `ask` bytes.
    fn stream_body(
        raw: &[u8],
        framing: Framing,
        max: u64,
        feed: usize,
        ask: usize,
    ) -> Result<Vec<u8>, String> {
        let mut r = BodyReader::new(BufReader::with_capacity(feed, raw), framing, max);
        let mut out = Vec::new();
        let mut buf = vec![0u8; ask];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    assert_eq!(r.read, out.len() as u64);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    #[test]
    fn a_streamed_body_reads_the_same_however_its_bytes_arrive() {
        let chunked =
            b"3;ext=1\r\nabc\r\n1\r\nd\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let want = b"abcd0123456789abcdef".to_vec();
        for feed in [1, 2, 3, 5, 7, 64] {
            for ask in [1, 2, 3, 16, 4096] {
                let at = format!("feed {feed}, ask {ask}");
                assert_eq!(
                    stream_body(chunked, Framing::Chunked, 1000, feed, ask),
                    Ok(want.clone()),
                    "{at}"
                );
                assert_eq!(
                    stream_body(b"hello world", Framing::Length(5), 1000, feed, ask),
                    Ok(b"hello".to_vec()),
                    "{at}"
                );
                assert_eq!(
                    stream_body(b"to the end", Framing::ToClose, 1000, feed, ask),
                    Ok(b"to the end".to_vec()),
                    "{at}"
                );
            }
        }
        assert_eq!(
            stream_body(b"ignored", Framing::Empty, 10, 8, 8),
            Ok(vec![])
        );
        // Much more than an in-memory answer may hold.
        let big: Vec<u8> = (0..3 * MAX_BODY).map(|i| (i % 253) as u8).collect();
        let mut raw = Vec::new();
        for piece in big.chunks(70_001) {
            raw.extend_from_slice(format!("{:X}\r\n", piece.len()).as_bytes());
            raw.extend_from_slice(piece);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(
            stream_body(&raw, Framing::Chunked, u64::MAX, 8192, 65536),
            Ok(big.clone())
        );
        // What ends early, breaks the framing or passes the limit fails.
        let failing: [(&[u8], Framing, u64, &str); 8] = [
            (
                b"5\r\nab",
                Framing::Chunked,
                100,
                "ended inside a chunk (3 bytes",
            ),
            (
                b"2\r\nab\r\n",
                Framing::Chunked,
                100,
                "without its final chunk",
            ),
            (
                b"2\r\nabXY1\r\nc\r\n0\r\n\r\n",
                Framing::Chunked,
                100,
                "not followed by CRLF",
            ),
            (b"zz\r\n", Framing::Chunked, 100, "chunk size"),
            (b"abc", Framing::Length(10), 100, "ended after 3 of 10"),
            (
                b"65\r\n",
                Framing::Chunked,
                100,
                "larger than the 100 bytes",
            ),
            (
                b"3\r\nabc\r\n3\r\nabc\r\n0\r\n\r\n",
                Framing::Chunked,
                5,
                "larger than the 5",
            ),
            (b"abcdef", Framing::ToClose, 5, "larger than the 5"),
        ];
        for (raw, framing, max, words) in failing {
            for feed in [1, 4, 64] {
                let got = stream_body(raw, framing, max, feed, 2);
                assert!(
                    got.as_ref().is_err_and(|e| e.contains(words)),
                    "{:?} (feed {feed}): {got:?}",
                    String::from_utf8_lossy(raw)
                );
            }
        }
    }
}
