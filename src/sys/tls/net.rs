//! The network under a probe: name resolution bounded by the call's budget, connection to each
//! resolved address in turn, and a TCP stream whose every read and write is bounded by one
//! deadline (or, for a streamed body, by an idle time).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{ProbeError, Target};
use crate::sys::http::QUOTE_BYTES;

pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

pub(super) fn connect(
    target: &Target,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, ProbeError> {
    let addrs = resolve(target, deadline, timeout)?;
    let mut last: Option<(SocketAddr, io::Error)> = None;
    for (i, addr) in addrs.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Share what is left among the remaining addresses, so one black hole cannot eat it all.
        let remaining = u32::try_from(addrs.len() - i).unwrap_or(u32::MAX).max(1);
        let share = (left / remaining).max(Duration::from_millis(1));
        match TcpStream::connect_timeout(addr, share) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((*addr, e)),
        }
    }
    match last {
        Some((addr, e)) if !is_timeout(&e) => Err(ProbeError::Connect {
            target: target.clone(),
            addr,
            source: e,
        }),
        Some((addr, _)) => Err(ProbeError::Timeout {
            target: target.clone(),
            what: format!("connecting to {addr}"),
            after: timeout,
        }),
        None => Err(ProbeError::Timeout {
            target: target.clone(),
            what: "connecting".to_string(),
            after: timeout,
        }),
    }
}

fn resolve(
    target: &Target,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, ProbeError> {
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let failed = |detail: String| ProbeError::Resolve {
        target: target.clone(),
        detail,
    };
    // The system resolver cannot be given a timeout: ask it from a helper thread and stop
    // waiting when the budget is spent (the thread then finishes on its own).
    let (tx, rx) = mpsc::channel();
    let (host, port) = (target.host.clone(), target.port);
    let spawned = std::thread::Builder::new()
        .name("certs-resolve".to_string())
        .spawn(move || {
            let found = (host.as_str(), port)
                .to_socket_addrs()
                .map(|it| it.collect::<Vec<_>>());
            let _ = tx.send(found);
        });
    let found = match spawned {
        Ok(_) => match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(found) => found,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(ProbeError::Timeout {
                    target: target.clone(),
                    what: format!("resolving {:?}", target.host),
                    after: timeout,
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(failed(
                    "the resolver thread ended without an answer".to_string(),
                ))
            }
        },
        Err(_) => (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map(|it| it.collect()),
    };
    match found {
        Ok(addrs) if addrs.is_empty() => Err(failed(format!(
            "{:?} resolved to no addresses",
            target.host
        ))),
        Ok(addrs) => Ok(addrs),
        Err(e) => Err(failed(format!("{:?}: {e}", target.host))),
    }
}

/// A TCP stream whose every read and write gets the time left until one deadline, and which
/// remembers the first bytes the server sent (to quote non-TLS answers). With `idle` set (a
/// streamed body, [`https_stream`]), every read and write gets `idle` instead: progress renews
/// the budget.
pub(super) struct DeadlineStream {
    pub(super) tcp: TcpStream,
    pub(super) deadline: Instant,
    pub(super) first_bytes: Vec<u8>,
    pub(super) idle: Option<Duration>,
}

impl DeadlineStream {
    fn left(&self) -> io::Result<Duration> {
        if let Some(idle) = self.idle {
            return Ok(idle);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::new(io::ErrorKind::TimedOut, "time budget spent"))
        } else {
            Ok(left)
        }
    }
}

fn timeout_kind(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "timed out")
    } else {
        e
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.tcp.set_read_timeout(Some(left))?;
        let n = self.tcp.read(buf).map_err(timeout_kind)?;
        if self.first_bytes.len() < QUOTE_BYTES + 1 {
            let take = n.min(QUOTE_BYTES + 1 - self.first_bytes.len());
            self.first_bytes.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.tcp.set_write_timeout(Some(left))?;
        self.tcp.write(buf).map_err(timeout_kind)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

#[cfg(test)]
mod tests {
    use crate::sys::tls::test_server::*;
    use crate::sys::tls::{probe, ProbeError, ProbeOptions, Target, Trust};
    use std::io::Read;
    use std::net::TcpListener;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn host_names_are_resolved() {
        let ca = ca("kubernetes");
        let leaf = server_leaf(&ca);
        let (ip_target, server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            1,
            Reply::Nothing,
        );
        // "localhost" may resolve to ::1 first, where nothing listens: the next address is tried.
        let target: Target = format!("https://localhost:{}", ip_target.port)
            .parse()
            .expect("target");
        let probe = probe(&target, &opts(&[&ca])).expect("probe");
        assert_eq!(probe.trust, Trust::Verified);
        server.join().expect("server thread");
    }

    #[test]
    fn unresolvable_host_is_an_error() {
        let target: Target = "https://no-such-host.invalid:6443".parse().expect("target");
        let o = ProbeOptions {
            insecure: true,
            timeout: Duration::from_secs(2),
            ..ProbeOptions::default()
        };
        match probe(&target, &o) {
            Err(e @ (ProbeError::Resolve { .. } | ProbeError::Timeout { .. })) => {
                assert!(e.to_string().contains("no-such-host.invalid"), "{e}")
            }
            other => panic!("expected Resolve, got {other:?}"),
        }
    }

    #[test]
    fn refused_connection_is_a_connect_error() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let target = Target {
            host: "127.0.0.1".to_string(),
            port,
        };
        let o = ProbeOptions {
            insecure: true,
            ..ProbeOptions::default()
        };
        match probe(&target, &o) {
            Err(e @ ProbeError::Connect { .. }) => {
                assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}")
            }
            other => panic!("expected Connect, got {other:?}"),
        }
    }

    #[test]
    fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let _server = thread::spawn(move || {
            if let Ok((mut sock, _)) = listener.accept() {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 1024];
                while matches!(sock.read(&mut buf), Ok(n) if n > 0) {}
            }
        });
        let target = Target {
            host: "127.0.0.1".to_string(),
            port,
        };
        let o = ProbeOptions {
            insecure: true,
            timeout: Duration::from_millis(300),
            ..ProbeOptions::default()
        };
        match probe(&target, &o) {
            Err(e @ ProbeError::Timeout { .. }) => assert!(e.to_string().contains("300ms"), "{e}"),
            other => panic!("expected Timeout, got {other:?}"),
        }
    }
}
