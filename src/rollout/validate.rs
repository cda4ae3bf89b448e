//! Proves, before anything changes, that every step of a plan can pass: each gate's URL parses
//! (port in range) and names a host the new certificate covers, its CA exists and signed what it
//! will serve, its client certificate and key exist, parse and pair, and each restart method
//! resolves on this node. `rollout plan`, `apply --dry-run` and `apply` all run it before the
//! first backup; one problem is one line. Pure: files and command lookups come through [`Io`].

use std::path::Path;

use super::plan::{parse_url, Gate, Plan, Step, Trust};
use super::profile::Restart;
use super::resolve::{covers, is_loopback};
use crate::pki::cert::CertInfo;
use crate::pki::decode::{decode, Item};

/// What validation may look at.
pub struct Io<'a> {
    /// A file's bytes, or `None` when it cannot be read.
    pub read: &'a dyn Fn(&Path) -> Option<Vec<u8>>,
    /// Whether a program (a bare name searched on PATH, or a path) can be run.
    pub runnable: &'a dyn Fn(&str) -> bool,
}

/// Shell words that are not programs to find.
const SHELL_BUILTINS: &[&str] = &[
    ".", ":", "[", "cd", "command", "eval", "exec", "exit", "export", "false", "set", "test",
    "true", "if", "for", "while", "until", "case", "{", "(", "!", "env", "timeout", "sudo",
];

/// Every problem, one line each; empty when the plan can run.
pub fn validate(plan: &Plan, io: &Io) -> Vec<String> {
    let mut out = Vec::new();
    for step in &plan.steps {
        restart(step, io, &mut out);
        for g in &step.gates {
            gate(plan, step, g, io, &mut out);
        }
    }
    if let Some(r) = &plan.etcd {
        membership(plan, r, io, &mut out);
    }
    out
}

/// An etcd retirement: what [`super::membership::check`] refuses, and the TLS files its
/// requests use (the CA, the client certificate and key: readable, pairing), checked as a gate's.
fn membership(plan: &Plan, r: &super::membership::Retirement, io: &Io, out: &mut Vec<String>) {
    out.extend(super::membership::check(r));
    let Some(a) = &r.access else { return };
    let step = Step {
        component: "etcd".into(),
        kind: "etcd".into(),
        restart: None,
        files: vec![],
        reads: vec![],
        gates: vec![],
        note: None,
        from: String::new(),
    };
    let g = Gate {
        url: a.bootstrap.clone(),
        path: Some("/health".into()),
        expect: None,
        trust: Trust::Ca(a.ca.clone()),
        client: a.client.clone(),
        serves: None,
        origin: a.origin.clone(),
    };
    let mut lines = Vec::new();
    gate(plan, &step, &g, io, &mut lines);
    out.extend(lines.into_iter().map(|l| format!("etcd membership: {l}")));
}

fn restart(step: &Step, io: &Io, out: &mut Vec<String>) {
    let name = &step.component;
    match &step.restart {
        None => {}
        Some(Restart::Systemd(unit) | Restart::SystemdReload(unit))
            if !(io.runnable)("systemctl") =>
        {
            out.push(format!(
                "{name}: restarts with `systemctl restart {unit}`, but no systemctl is on PATH; pass --restart-cmd {name}='…'"
            ));
        }
        Some(Restart::StaticPod(m)) if (io.read)(m).is_none() => {
            out.push(format!(
                "{name}: restarts by parking its static pod manifest `{}`, which cannot be read",
                m.display()
            ));
        }
        Some(Restart::Systemd(_) | Restart::SystemdReload(_) | Restart::StaticPod(_)) => {}
        Some(Restart::Command(cmd)) => {
            let words = crate::node::unit::words(cmd);
            let program = words
                .iter()
                .find(|w| !w.contains('=') || w.starts_with('/'))
                .cloned();
            match program {
                None => out.push(format!("{name}: the restart command `{cmd}` is empty")),
                Some(p) if SHELL_BUILTINS.contains(&p.as_str()) => {}
                Some(p) if !(io.runnable)(&p) => out.push(format!(
                    "{name}: the restart command `{cmd}` runs `{p}`, which is not an executable file nor on PATH"
                )),
                Some(_) => {}
            }
        }
    }
    if step.restart.is_some() && step.gates.is_empty() && step.note.is_none() {
        out.push(format!(
            "{name}: no health gate would prove the restart; pass --health {name}=https://HOST:PORT/PATH"
        ));
    }
}

fn certs_in(bytes: &[u8]) -> Vec<CertInfo> {
    decode(Path::new(""), bytes)
        .items
        .into_iter()
        .filter_map(|i| match i {
            Item::Cert { info, .. } => Some(*info),
            _ => None,
        })
        .collect()
}

/// The bytes a file will have when the gate runs: the bundle's new file if the plan swaps it
/// (in this or an earlier step), the node's file otherwise.
fn at_gate_time(plan: &Plan, path: &Path, io: &Io) -> Option<Vec<u8>> {
    match plan
        .files
        .iter()
        .find(|f| f.target == path || f.link.as_deref() == Some(path))
    {
        Some(f) => (io.read)(&f.source),
        None => (io.read)(path),
    }
}

fn gate(plan: &Plan, step: &Step, g: &Gate, io: &Io, out: &mut Vec<String>) {
    let name = &step.component;
    let at = format!("{name}: gate {}", g.url);
    let target = match parse_url(&g.url) {
        Ok((_, t)) => t,
        Err(e) => {
            out.push(format!("{name}: gate (from {}): {e}", g.origin));
            return;
        }
    };
    let served = g.serves.map(|i| &plan.files[i]);
    if let Some(f) = served {
        if !covers(&f.sans, &target.host) {
            out.push(format!(
                "{at}: the new certificate `{}` does not cover {} (it covers {}); the gate could never see it — pass --health {name}=https://<one of those>:{}/PATH",
                f.target.display(),
                target.host,
                if f.sans.is_empty() { "nothing".into() } else { f.sans.join(", ") },
                target.port
            ));
        }
    }
    match &g.trust {
        Trust::Ca(ca) => match (io.read)(ca).map(|b| certs_in(&b)) {
            None => out.push(format!(
                "{at}: its CA file `{}` cannot be read; pass --health-ca {name}=FILE",
                ca.display()
            )),
            Some(cas) if cas.is_empty() => out.push(format!(
                "{at}: its CA file `{}` holds no certificate",
                ca.display()
            )),
            Some(cas) => {
                let leaf = served
                    .and_then(|f| (io.read)(&f.source))
                    .map(|b| certs_in(&b));
                if let Some(Some(leaf)) = leaf.map(|l| l.into_iter().next()) {
                    if !cas.iter().any(|c| leaf.is_signed_by(c)) {
                        out.push(format!(
                            "{at}: the CA in `{}` did not sign the new certificate `{}`; pass --health-ca {name}=FILE",
                            ca.display(),
                            served.map(|f| f.target.display().to_string()).unwrap_or_default()
                        ));
                    }
                }
            }
        },
        Trust::SelfSigned => {
            if !is_loopback(&target.host) {
                out.push(format!(
                    "{at}: no CA is known for what it serves, and a liveness-only probe is made on loopback addresses only; pass --health-ca {name}=FILE"
                ));
            }
        }
        Trust::Plain => {
            if let Some(f) = served {
                out.push(format!(
                    "{at}: plain HTTP cannot prove that `{}` is served; pass --health {name}=https://HOST:PORT/PATH",
                    f.target.display()
                ));
            }
            if !is_loopback(&target.host) {
                out.push(format!(
                    "{at}: plain HTTP gates are made on loopback addresses only"
                ));
            }
        }
    }
    if let Some(id) = &g.client {
        let cert = at_gate_time(plan, &id.cert, io);
        let key = at_gate_time(plan, &id.key, io);
        match (cert, key) {
            (None, _) => out.push(format!(
                "{at}: its client certificate `{}` cannot be read",
                id.cert.display()
            )),
            (_, None) => out.push(format!(
                "{at}: its client key `{}` cannot be read",
                id.key.display()
            )),
            (Some(c), Some(k)) => {
                let cert = certs_in(&c).into_iter().next();
                let key = decode(Path::new(""), &k)
                    .items
                    .into_iter()
                    .find_map(|i| match i {
                        Item::Key { info, .. } => Some(info),
                        _ => None,
                    });
                match (cert, key) {
                    (None, _) => out.push(format!(
                        "{at}: its client certificate `{}` holds no certificate",
                        id.cert.display()
                    )),
                    (_, None) => out.push(format!(
                        "{at}: its client key `{}` holds no private key",
                        id.key.display()
                    )),
                    (Some(c), Some(k)) if k.public_key.as_ref() != Some(&c.public_key) => {
                        out.push(format!(
                            "{at}: the client certificate `{}` does not pair with the key `{}`",
                            id.cert.display(),
                            id.key.display()
                        ))
                    }
                    _ => {}
                }
            }
        }
    }
}
