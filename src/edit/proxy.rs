//! Node-local apiserver proxies: the `server` lines of nginx `upstream` blocks (kubeasz kube-lb,
//! kubespray nginx-proxy) and of haproxy `backend`/`listen` sections (kubespray haproxy, kubeadm
//! HA guides), read ([`servers`]) and edited in place ([`upstreams`]): lines of retired masters
//! removed, lines for new ones added after the last `server` line of the same block, shaped
//! like it (indentation, spacing, options). Every other byte stays identical.

use super::error::Error;
use std::ops::Range;

use super::config::{host_port, same_host};

/// Which proxy's syntax a line is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// `server HOST:PORT [max_fails=2 fail_timeout=30s] [down];` inside `upstream NAME { }`.
    Nginx,
    /// `server NAME HOST:PORT [check ...] [disabled]` inside `backend NAME` or `listen NAME`.
    Haproxy,
}

/// One upstream server line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// 1-based line number.
    pub line: usize,
    pub syntax: Syntax,
    /// The block it belongs to: `upstream kube_apiserver`, `backend kube_api_backend`.
    pub block: String,
    /// haproxy's server name (`node1`); nginx servers have none.
    pub name: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// Marked `down` (nginx) or `disabled` (haproxy): it already receives no traffic.
    pub down: bool,
    /// The line, trimmed.
    pub text: String,
}

impl Server {
    /// Whether `who` (an address, a host name, or haproxy's server name) designates it.
    pub fn is(&self, who: &str) -> bool {
        same_host(&self.host, who) || self.name.as_deref() == Some(who)
    }
}

/// A server line with where its parts are, for editing.
struct Parsed {
    server: Server,
    block_id: usize,
    /// The whole line, its newline included, in the text.
    line: Range<usize>,
    /// The only statement on its line (an edit removes or copies whole lines).
    alone: bool,
    /// Relative to the line's start.
    addr: Range<usize>,
    name: Option<Range<usize>>,
    /// The `down`/`disabled` word with the blanks before it.
    down: Option<Range<usize>>,
    /// Where a trailing `#` comment starts, if any.
    comment: Option<usize>,
}

/// haproxy's section keywords (a section runs to the next one).
const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "resolvers",
    "peers",
    "userlist",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "fcgi-app",
    "crt-store",
    "traces",
];

/// Words of `code` with their byte ranges.
fn words(code: &str) -> Vec<(&str, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in code
        .char_indices()
        .chain(std::iter::once((code.len(), ' ')))
    {
        match (start, c.is_whitespace()) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                out.push((&code[s..i], s..i));
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn parse(text: &str) -> Vec<Parsed> {
    let mut out = Vec::new();
    // nginx blocks: (header, id); haproxy: the current section (header, id).
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut section: Option<(String, usize)> = None;
    let mut fragment = String::new();
    let mut next_id = 0;
    let mut offset = 0;
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let comment = line.find('#');
        let code = &line[..comment.unwrap_or(line.len())];
        let first = words(code).first().map(|(s, _)| *s);
        if stack.is_empty() && first.is_some_and(|f| SECTIONS.contains(&f)) {
            section = Some((code.trim().to_string(), next_id));
            next_id += 1;
        }
        // The line's statements: nginx ends them with `;` and opens and closes blocks with
        // braces, so `upstream x { server a:6443; server b:6443; }` is three on one line.
        let mut seg = 0;
        let bounds = code
            .char_indices()
            .filter(|(_, c)| matches!(c, '{' | '}' | ';'))
            .chain(std::iter::once((code.len(), '\n')));
        for (i, c) in bounds {
            let piece = &code[seg..i];
            let w: Vec<(&str, Range<usize>)> = words(piece)
                .into_iter()
                .map(|(s, r)| (s, r.start + seg..r.end + seg))
                .collect();
            if w.first().map(|(s, _)| *s) == Some("server") {
                let nginx = stack
                    .last()
                    .filter(|(h, _)| h.split_whitespace().next() == Some("upstream"));
                let haproxy = section.as_ref().filter(|(h, _)| {
                    seg == 0
                        && stack.is_empty()
                        && matches!(h.split_whitespace().next(), Some("backend" | "listen"))
                });
                let found = match (nginx, haproxy) {
                    (Some((block, id)), _) if w.len() >= 2 => {
                        Some((Syntax::Nginx, block, *id, None, 1))
                    }
                    (None, Some((block, id))) if w.len() >= 3 => {
                        Some((Syntax::Haproxy, block, *id, Some(w[1].1.clone()), 2))
                    }
                    _ => None,
                };
                if let Some((syntax, block, block_id, name, a)) = found {
                    let addr = w[a].1.clone();
                    let addr_text = &code[addr.clone()];
                    let down_word = match syntax {
                        Syntax::Nginx => "down",
                        Syntax::Haproxy => "disabled",
                    };
                    let mut down = None;
                    for (k, (word, r)) in w.iter().enumerate().skip(a + 1) {
                        if *word == down_word {
                            down = Some(w[k - 1].1.end..r.end);
                        }
                    }
                    // Alone on its line: nothing before it, nothing after its `;`.
                    let after = if c == ';' { i + 1 } else { i };
                    let alone = code[..seg].trim().is_empty() && code[after..].trim().is_empty();
                    if !addr_text.is_empty() && !addr_text.starts_with("unix:") {
                        let (host, port) = host_port(addr_text);
                        let text = if alone {
                            line.trim().to_string()
                        } else {
                            code[seg..after].trim().to_string()
                        };
                        out.push(Parsed {
                            server: Server {
                                line: n + 1,
                                syntax,
                                block: block.clone(),
                                name: name.clone().map(|r| code[r].to_string()),
                                host: host.to_string(),
                                port,
                                down: down.is_some(),
                                text,
                            },
                            block_id,
                            line: start..offset,
                            alone,
                            addr,
                            name,
                            down,
                            comment,
                        });
                    }
                }
            }
            match c {
                '{' => {
                    fragment.push_str(piece);
                    stack.push((fragment.trim().to_string(), next_id));
                    next_id += 1;
                    fragment.clear();
                }
                '}' => {
                    stack.pop();
                    fragment.clear();
                }
                ';' => fragment.clear(),
                _ => fragment.push_str(piece),
            }
            seg = (i + 1).min(code.len());
        }
        fragment.push(' ');
    }
    out
}

/// The files an nginx config `include`s, as written (a path or a glob), in order.
pub fn includes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = &line[..line.find('#').unwrap_or(line.len())];
        for piece in code.split([';', '{', '}']) {
            let mut w = piece.split_whitespace();
            if let (Some("include"), Some(path)) = (w.next(), w.next()) {
                out.push(path.trim_matches(['"', '\'']).to_string());
            }
        }
    }
    out
}

/// Every upstream server line of an nginx or haproxy config, in order.
pub fn servers(text: &str) -> Vec<Server> {
    parse(text).into_iter().map(|p| p.server).collect()
}

/// A server to add: `[NAME=]HOST[:PORT]`.
struct Add {
    name: Option<String>,
    host: String,
    port: Option<u16>,
    spelled: String,
}

fn parse_add(s: &str) -> Result<Add, Error> {
    let bad = || Error::Proxy(format!("`{s}` is not [NAME=]HOST[:PORT]"));
    let (name, addr) = match s.split_once('=') {
        Some((n, a)) if !n.is_empty() => (Some(n.to_string()), a),
        Some(_) => return Err(bad()),
        None => (None, s),
    };
    if addr.is_empty() || addr.contains(char::is_whitespace) || addr.contains(['/', ';', '#']) {
        return Err(bad());
    }
    let (host, port) = host_port(addr);
    let has_port = addr.starts_with('[') && addr.contains("]:")
        || !addr.starts_with('[') && addr.matches(':').count() == 1;
    if has_port && port.is_none() || host.is_empty() {
        return Err(bad());
    }
    Ok(Add {
        name,
        host: host.to_string(),
        port,
        spelled: s.to_string(),
    })
}

/// The proxy configs' server lists edited: every server line whose host (or haproxy name) is
/// one of `retire` removed; each of `add` (`HOST:PORT`, `HOST` for the port of the lines
/// around it, or `NAME=HOST:PORT` to name a haproxy server; the host is the name otherwise)
/// added to every block that has a server on that port, after the block's last server line,
/// as a copy of its last live (not `down`/`disabled`) line with the address (and name)
/// replaced: same indentation, spacing and options, minus a trailing comment. A server already
/// listed is not added twice. A block left without servers, an add that fits no block, a
/// haproxy name already taken: a one-line error.
pub fn upstreams(text: &str, retire: &[&str], add: &[String]) -> Result<Option<String>, Error> {
    let adds = add
        .iter()
        .map(|a| parse_add(a))
        .collect::<Result<Vec<_>, _>>()?;
    let parsed = parse(text);
    let retired = |p: &Parsed| retire.iter().any(|r| p.server.is(r));
    let mut blocks: Vec<usize> = Vec::new();
    for p in &parsed {
        if !blocks.contains(&p.block_id) {
            blocks.push(p.block_id);
        }
    }
    // Lines to drop (by the start of the line), and lines to add after a line start.
    let removed: Vec<usize> = parsed
        .iter()
        .filter(|p| retired(p))
        .map(|p| p.line.start)
        .collect();
    let mut inserts: Vec<(usize, String)> = Vec::new();
    let mut landed = vec![false; adds.len()];
    for id in blocks {
        let members: Vec<&Parsed> = parsed.iter().filter(|p| p.block_id == id).collect();
        let last = members[members.len() - 1];
        // Edits remove and copy whole lines: a block written on one line is edited by hand.
        if let Some(p) = members
            .iter()
            .find(|p| !p.alone && (retired(p) || !adds.is_empty()))
        {
            return Err(Error::Proxy(format!(
                "{} (line {}): `{}` shares its line with other statements; edit that line by hand",
                p.server.block, p.server.line, p.server.text
            )));
        }
        let template = members
            .iter()
            .rev()
            .find(|p| !p.server.down && !retired(p))
            .or_else(|| members.iter().rev().find(|p| !p.server.down))
            .unwrap_or(&last);
        let mut added = 0;
        for (i, a) in adds.iter().enumerate() {
            let port = a.port.or(template.server.port);
            if a.port.is_some() && !members.iter().any(|p| p.server.port == a.port) {
                continue;
            }
            landed[i] = true;
            if members
                .iter()
                .any(|p| !retired(p) && same_host(&p.server.host, &a.host) && p.server.port == port)
            {
                continue;
            }
            let name = a.name.clone().unwrap_or_else(|| a.host.clone());
            if template.name.is_some() {
                if let Some(p) = members
                    .iter()
                    .find(|p| !retired(p) && p.server.name.as_deref() == Some(name.as_str()))
                {
                    return Err(Error::Proxy(format!(
                        "{}: a server named {name} is already on line {} ({}); add it as NAME={}",
                        template.server.block, p.server.line, p.server.text, a.spelled
                    )));
                }
            }
            let host = if a.host.contains(':') {
                format!("[{}]", a.host)
            } else {
                a.host.clone()
            };
            let address = match port {
                Some(p) => format!("{host}:{p}"),
                None => host,
            };
            inserts.push((last.line.start, shaped(text, template, &address, &name)));
            added += 1;
        }
        let gone: Vec<&&Parsed> = members.iter().filter(|p| retired(p)).collect();
        if gone.len() == members.len() && added == 0 {
            return Err(Error::Proxy(format!(
                "{} (line {}): removing {} leaves it no server; add the new masters first",
                last.server.block,
                members[0].server.line,
                gone.iter()
                    .map(|p| p.server.host.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    if let Some(i) = landed.iter().position(|l| !l) {
        return Err(Error::Proxy(format!(
            "no upstream block has a server on port {} to add {} beside",
            adds[i].port.map_or(String::new(), |p| p.to_string()),
            adds[i].spelled
        )));
    }
    if removed.is_empty() && inserts.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len() + 64 * inserts.len());
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        if !removed.contains(&start) {
            out.push_str(raw);
        }
        for (_, line) in inserts.iter().filter(|(after, _)| *after == start) {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(line);
        }
    }
    Ok(Some(out))
}

/// A new server line shaped like `template`: its address (and haproxy name) replaced, its
/// `down`/`disabled` word and trailing comment dropped, its line ending kept.
fn shaped(text: &str, template: &Parsed, address: &str, name: &str) -> String {
    let raw = &text[template.line.clone()];
    let ending = if raw.ends_with("\r\n") { "\r\n" } else { "\n" };
    let line = raw.trim_end_matches(['\n', '\r']);
    let mut edits: Vec<(Range<usize>, &str)> = vec![(template.addr.clone(), address)];
    if let Some(r) = &template.name {
        edits.push((r.clone(), name));
    }
    if let Some(r) = &template.down {
        edits.push((r.clone(), ""));
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut s = line.to_string();
    if let Some(c) = template.comment {
        s.truncate(c);
        s.truncate(s.trim_end().len());
    }
    for (r, new) in edits {
        if r.end <= s.len() {
            s.replace_range(r, new);
        }
    }
    s.push_str(ending);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBE_LB: &str = include_str!("../../fixtures/binary/etc/kube-lb/conf/kube-lb.conf");

    /// kubespray's nginx-proxy (`roles/kubernetes/node/templates/loadbalancer/nginx.conf.j2`)
    /// as rendered on a node of a three-master cluster.
    const NGINX_PROXY: &str = "error_log stderr notice;

worker_processes 2;
worker_rlimit_nofile 130048;
worker_shutdown_timeout 10s;

events {
  multi_accept on;
  use epoll;
  worker_connections 16384;
}

stream {
  upstream kube_apiserver {
    least_conn;
    server 10.6.0.11:6443;
    server 10.6.0.12:6443;
    server 10.6.0.13:6443;
    }

  server {
    listen        127.0.0.1:6443;
    proxy_pass    kube_apiserver;
    proxy_timeout 10m;
    proxy_connect_timeout 1s;
  }
}

http {
  aio threads;
  aio_write on;
  tcp_nopush on;
  tcp_nodelay on;

  keepalive_timeout 5m;
  keepalive_requests 100;
  reset_timedout_connection on;
  server_tokens off;
  autoindex off;

  server {
    listen 8081;
    location /healthz {
      access_log off;
      return 200;
    }
    location /stub_status {
      stub_status on;
      access_log off;
    }
  }
}
";

    /// kubespray's haproxy (`loadbalancer/haproxy.cfg.j2`) as rendered on a node.
    const HAPROXY: &str = "global
    maxconn                 4000
    log                     127.0.0.1 local0

defaults
    mode                    http
    log                     global
    option                  httplog
    option                  dontlognull
    option                  http-server-close
    option                  redispatch
    retries                 5
    timeout http-request    5m
    timeout queue           5m
    timeout connect         30s
    timeout client          15m
    timeout server          15m
    timeout http-keep-alive 30s
    timeout check           30s
    maxconn                 4000

frontend healthz
  bind 0.0.0.0:8081
  mode http
  monitor-uri /healthz

frontend kube_api_frontend
  bind 127.0.0.1:6443
  mode tcp
  option tcplog
  default_backend kube_api_backend

backend kube_api_backend
  mode tcp
  balance leastconn
  default-server inter 15s downinter 15s rise 2 fall 2 slowstart 60s maxconn 1000 maxqueue 256 weight 100
  option httpchk GET /healthz
  http-check expect status 200
  server node1 10.6.0.11:6443 check check-ssl verify none
  server node2 10.6.0.12:6443 check check-ssl verify none
  server node3 10.6.0.13:6443 check check-ssl verify none
";

    /// The keepalived + haproxy layout of kubeadm's HA guide: a `listen` section, a `down`-like
    /// `disabled` server, a comment, and CRLF line endings.
    const HAPROXY_LISTEN: &str = "# apiserver VIP 192.168.1.40:8443\r\nlisten apiserver\r\n    bind *:8443\r\n    mode tcp\r\n    balance roundrobin\r\n    server master1 192.168.1.11:6443 check fall 3 rise 2 # first\r\n    server master2 192.168.1.12:6443 check fall 3 rise 2\r\n    server master3 192.168.1.13:6443 check fall 3 rise 2 disabled\r\n\r\nlisten stats\r\n    bind *:9000\r\n    mode http\r\n";

    /// Lines of `new` are those of `old` without `removed` (1-based) and with `added` inserted
    /// after old line `after`.
    fn lines_of(text: &str) -> Vec<&str> {
        text.split_inclusive('\n').collect()
    }

    #[test]
    fn nginx_servers_only_inside_upstream_blocks() {
        let s = servers(KUBE_LB);
        let got: Vec<(usize, &str, Option<u16>, bool)> = s
            .iter()
            .map(|s| (s.line, s.host.as_str(), s.port, s.down))
            .collect();
        assert_eq!(
            got,
            [
                (12, "172.72.0.95", Some(6443), false),
                (13, "172.72.0.96", Some(6443), false),
                (14, "172.72.0.97", Some(6443), false)
            ]
        );
        assert!(s
            .iter()
            .all(|s| s.block == "upstream backend" && s.syntax == Syntax::Nginx));
        // `server { listen ...; }` blocks and `server_tokens` are not upstream servers.
        let s = servers(NGINX_PROXY);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].block, "upstream kube_apiserver");
        assert_eq!(s[2].text, "server 10.6.0.13:6443;");
    }

    #[test]
    fn nginx_retire_two_of_three_removes_exactly_their_lines() {
        let new = upstreams(KUBE_LB, &["172.72.0.96", "172.72.0.97"], &[])
            .unwrap()
            .unwrap();
        let mut expect = lines_of(KUBE_LB);
        expect.remove(13);
        expect.remove(12);
        assert_eq!(lines_of(&new), expect);
    }

    #[test]
    fn nginx_add_copies_the_previous_line_options() {
        let kubeasz = include_str!("../../fixtures/kubeasz-ecdsa/etc/kube-lb/conf/kube-lb.conf");
        let new = upstreams(kubeasz, &["192.168.1.3"], &["192.168.1.4:6443".into()])
            .unwrap()
            .unwrap();
        let mut expect = lines_of(kubeasz);
        expect.remove(13);
        expect.insert(
            13,
            "        server 192.168.1.4:6443    max_fails=2 fail_timeout=3s;\n",
        );
        assert_eq!(lines_of(&new), expect);
        // A host alone takes the port of the lines around it; twice is once.
        let again = upstreams(&new, &[], &["192.168.1.4".into()]).unwrap();
        assert_eq!(again, None);
        let new = upstreams(NGINX_PROXY, &[], &["10.6.0.14".into()])
            .unwrap()
            .unwrap();
        let mut expect = lines_of(NGINX_PROXY);
        expect.insert(18, "    server 10.6.0.14:6443;\n");
        assert_eq!(lines_of(&new), expect);
    }

    #[test]
    fn nginx_down_lines_are_drained_and_not_templates() {
        let text = "stream {\n  upstream backend {\n    server 10.0.0.1:6443 max_fails=2 fail_timeout=30s;\n    server 10.0.0.2:6443 max_fails=2 fail_timeout=30s down;\n  }\n}\n";
        let s = servers(text);
        assert_eq!((s[0].down, s[1].down), (false, true));
        let new = upstreams(text, &["10.0.0.2"], &["10.0.0.3:6443".into()])
            .unwrap()
            .unwrap();
        assert_eq!(
            new,
            "stream {\n  upstream backend {\n    server 10.0.0.1:6443 max_fails=2 fail_timeout=30s;\n    server 10.0.0.3:6443 max_fails=2 fail_timeout=30s;\n  }\n}\n"
        );
    }

    #[test]
    fn haproxy_backend_retire_and_add_with_a_name() {
        let s = servers(HAPROXY);
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].name.as_deref(), Some("node2"));
        assert_eq!(s[1].block, "backend kube_api_backend");
        assert_eq!(s[1].syntax, Syntax::Haproxy);
        // By server name or by address.
        for who in ["node3", "10.6.0.13"] {
            let new = upstreams(HAPROXY, &[who], &["node4=10.6.0.14:6443".into()])
                .unwrap()
                .unwrap();
            let mut expect = lines_of(HAPROXY);
            let last = expect.len() - 1;
            expect[last] = "  server node4 10.6.0.14:6443 check check-ssl verify none\n";
            assert_eq!(lines_of(&new), expect, "{who}");
        }
        // Without a name the host names it; an existing name is refused.
        let new = upstreams(HAPROXY, &[], &["10.6.0.14:6443".into()])
            .unwrap()
            .unwrap();
        assert!(new.ends_with(
            "  server node3 10.6.0.13:6443 check check-ssl verify none\n  server 10.6.0.14 10.6.0.14:6443 check check-ssl verify none\n"
        ));
        let err = upstreams(HAPROXY, &[], &["node1=10.6.0.14:6443".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already on line") && !err.contains('\n'),
            "{err}"
        );
    }

    #[test]
    fn haproxy_listen_disabled_comment_and_crlf() {
        let s = servers(HAPROXY_LISTEN);
        assert_eq!(s.len(), 3);
        assert!(s[2].down && !s[1].down);
        assert_eq!(s[0].block, "listen apiserver");
        let new = upstreams(
            HAPROXY_LISTEN,
            &["master1"],
            &["master4=192.168.1.14".into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            new,
            "# apiserver VIP 192.168.1.40:8443\r\nlisten apiserver\r\n    bind *:8443\r\n    mode tcp\r\n    balance roundrobin\r\n    server master2 192.168.1.12:6443 check fall 3 rise 2\r\n    server master3 192.168.1.13:6443 check fall 3 rise 2 disabled\r\n    server master4 192.168.1.14:6443 check fall 3 rise 2\r\n\r\nlisten stats\r\n    bind *:9000\r\n    mode http\r\n"
        );
    }

    #[test]
    fn errors_are_one_line() {
        let err = upstreams(KUBE_LB, &["172.72.0.95", "172.72.0.96", "172.72.0.97"], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("upstream backend") && err.contains("no server"),
            "{err}"
        );
        // Retiring them all is fine once a new one takes their place.
        let new = upstreams(
            KUBE_LB,
            &["172.72.0.95", "172.72.0.96", "172.72.0.97"],
            &["172.72.0.98:6443".into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(servers(&new).len(), 1);
        assert_eq!(servers(&new)[0].line, 12);
        let err = upstreams(KUBE_LB, &[], &["10.0.0.1:7443".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("port 7443"), "{err}");
        for bad in ["", "a b:1", "h:port", "=h:1"] {
            assert!(
                upstreams(KUBE_LB, &[], &[bad.to_string()]).is_err(),
                "{bad}"
            );
        }
        assert_eq!(upstreams(KUBE_LB, &["10.0.0.1"], &[]), Ok(None));
        assert!(servers("server {\n listen 80;\n}\n").is_empty());
    }

    #[test]
    fn one_line_blocks_tabs_and_comments_are_read() {
        let nginx = "stream {\n    upstream kube { server 10.0.0.1:6443; server 10.0.0.2:6443 down; } # lb\n    upstream\tother\t{\n\tserver\t10.0.0.3:6443;\t# m3\n    }\n}\n";
        let got: Vec<(usize, String, bool)> = servers(nginx)
            .into_iter()
            .map(|s| (s.line, s.host, s.down))
            .collect();
        assert_eq!(
            got,
            [
                (2, "10.0.0.1".to_string(), false),
                (2, "10.0.0.2".to_string(), true),
                (4, "10.0.0.3".to_string(), false)
            ]
        );
        assert_eq!(servers(nginx)[0].text, "server 10.0.0.1:6443;");
        // Editing a line that holds a whole block is refused, not half done.
        let err = upstreams(nginx, &["10.0.0.1"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("by hand"), "{err}");
        // The separate block is still edited line by line.
        let out = upstreams(nginx, &["10.0.0.3"], &["10.0.0.4:6443".into()]);
        assert!(
            out.is_err(),
            "the one-line block would take the add too: {out:?}"
        );
        let haproxy = "backend\tkube\n\tserver\tm1\t10.0.0.1:6443\tcheck\n\tserver\tm2\t10.0.0.2:6443 check # two\n";
        let names: Vec<Option<String>> = servers(haproxy).into_iter().map(|s| s.name).collect();
        assert_eq!(names, [Some("m1".to_string()), Some("m2".to_string())]);
        let out = upstreams(haproxy, &["10.0.0.1"], &[]).unwrap().unwrap();
        assert_eq!(
            out,
            "backend\tkube\n\tserver\tm2\t10.0.0.2:6443 check # two\n"
        );
    }
}
