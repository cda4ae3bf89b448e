//! etcd membership as rollout steps, for a master retirement (`bundle.json`'s
//! `etcd_membership.remove`). Before any file step, over the v3 JSON gateway
//! ([`crate::sys::tls`]) with the endpoint, CA and client certificate the node gives etcd's gate
//! ([`super::resolve::etcd_access`]):
//!
//! 1. a snapshot of the keyspace to `<state-dir>/snapshots/<time>.db` (the gateway's stream of
//!    base64 `blob`s, the last one etcd's SHA-256 of the rest, decoded as it arrives into a temp
//!    file beside it, the SHA-256 computed on the way: verified, then the file renamed into
//!    place, as etcdctl writes it), its size and revision recorded. Memory stays bounded (one
//!    gateway message at a time), the size by the free space of the state dir, the time by
//!    progress (`--health-timeout` between two reads);
//! 2. leadership moved to a kept member when a retired member leads, the new leader verified;
//! 3. `member remove` of each retired member, behind a gate: the kept members healthy, a leader
//!    among them, the member list without it.
//!
//! The plan reads the live member list (read-only) to resolve the names, and records it; the
//! requests then go to the kept members' client URLs. Removing a member cannot be undone: a
//! failure after a removal stops the rollout (no file step has run yet, so nothing needs
//! restoring) and `resume` continues with the membership step that stopped, each step checking
//! first what is already done. A failure before any removal changes nothing.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::plan::Identity;
use crate::node::Component as NodeComponent;
use crate::preflight::etcd::Member;

mod admin;
mod planning;
mod steps;
mod stream;
#[cfg(test)]
mod testkit;

pub use admin::{EtcdAdmin, GatewayAdmin, NoEtcd, Status};
pub use planning::{check, plan, SNAPSHOT_CAP};
pub use steps::is_membership;
pub(super) use steps::not_undone;
pub use stream::{verify_snapshot, SnapshotDecoder, SnapshotSum};

/// The component name of every membership step (events, journal notes, status).
pub const COMPONENT: &str = "etcd-membership";
/// Step kinds.
pub const SNAPSHOT: &str = "etcd-snapshot";
pub const MOVE_LEADER: &str = "etcd-move-leader";
pub const MEMBER_REMOVE: &str = "etcd-member-remove";
/// Journal notes of what a membership step changed start so (after `etcd-membership: `).
pub(super) const DONE: &str = "done: ";

/// How the membership steps reach etcd.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Access {
    /// Where the member list is read first: etcd's client URL on this node, or `--health etcd=`.
    pub bootstrap: String,
    /// Verifies every member's serving certificate.
    pub ca: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Identity>,
    /// Where each was read.
    pub origin: String,
}

/// A member of the cluster as the plan read it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberRef {
    /// The uint64 id in decimal, as the gateway writes it; empty when only the node's
    /// `--initial-cluster` named the member (etcd could not be reached).
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub client_urls: Vec<String>,
    #[serde(default)]
    pub peer_urls: Vec<String>,
    /// `/health` when planned (unknown without the live cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
}

impl MemberRef {
    pub(super) fn as_member(&self) -> Member {
        Member {
            id: self.id.clone(),
            name: self.name.clone(),
            peer_urls: self.peer_urls.clone(),
            client_urls: self.client_urls.clone(),
        }
    }

    /// The id as etcdctl prints and takes it.
    pub fn hex(&self) -> String {
        if self.id.is_empty() {
            format!("<id of {}>", self.name)
        } else {
            self.as_member().hex_id()
        }
    }

    /// Whether `who` (a member name, or the address of a peer or client URL) designates it.
    pub fn is(&self, who: &str) -> bool {
        self.as_member().is(who)
    }

    /// `etcd3 (ac62bb5f8a7de638)`.
    pub fn describe(&self) -> String {
        if self.id.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, self.hex())
        }
    }

    /// Its https client URL: where it is asked.
    pub fn endpoint(&self) -> Option<&str> {
        self.client_urls
            .iter()
            .find(|u| u.starts_with("https://"))
            .map(String::as_str)
    }

    pub(super) fn key(&self) -> &str {
        if self.id.is_empty() {
            &self.name
        } else {
            &self.id
        }
    }
}

/// One membership step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Save the keyspace into `dir` over `endpoint`.
    Snapshot { dir: PathBuf, endpoint: String },
    /// If a retired member leads when the step runs, hand leadership to `to`.
    MoveLeader { to: MemberRef },
    /// `member remove`.
    Remove { member: MemberRef },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Planned {
    /// Index into `Plan::steps`.
    pub step: usize,
    pub action: Action,
    pub description: String,
    /// The same by hand, with the endpoints and TLS flags.
    pub manual: String,
}

/// The membership change of a retirement, as planned: recorded in the plan (and so in the
/// journal, for `resume`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Retirement {
    /// As bundle.json names them.
    pub remove: Vec<String>,
    /// None when the node does not say how to reach etcd (the plan is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// Whether `members` was read from the live cluster (else from the node's
    /// `--initial-cluster`, and the plan is refused).
    pub live: bool,
    /// Where `members` was read.
    pub source: String,
    pub members: Vec<MemberRef>,
    /// The leader's id when planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The keyspace's size in bytes and its revision when planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The bytes free for the snapshot when planned (on the file system of the snapshot
    /// directory, or of its nearest existing ancestor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_room: Option<u64>,
    /// The kept members' https client URLs: where the requests go.
    pub endpoints: Vec<String>,
    pub actions: Vec<Planned>,
}

impl Retirement {
    /// The members `who` designates.
    pub fn matches(&self, who: &str) -> Vec<&MemberRef> {
        self.members.iter().filter(|m| m.is(who)).collect()
    }

    /// The members to remove, in removal order: those unhealthy now first (they cost nothing
    /// to remove and weigh on the quorum while listed), then as bundle.json names them.
    pub fn retired(&self) -> Vec<&MemberRef> {
        let mut out: Vec<&MemberRef> = Vec::new();
        for who in &self.remove {
            for m in self.matches(who) {
                if !out.iter().any(|o| o.key() == m.key()) {
                    out.push(m);
                }
            }
        }
        out.sort_by_key(|m| m.healthy != Some(false));
        out
    }

    pub fn kept(&self) -> Vec<&MemberRef> {
        let retired = self.retired();
        self.members
            .iter()
            .filter(|m| !retired.iter().any(|r| r.key() == m.key()))
            .collect()
    }

    pub fn action(&self, step: usize) -> Option<&Planned> {
        self.actions.iter().find(|a| a.step == step)
    }

    pub(super) fn name_of(&self, id: &str) -> String {
        self.members
            .iter()
            .find(|m| m.id == id)
            .map_or_else(|| format!("member {id}"), MemberRef::describe)
    }

    pub fn render_header(&self) -> String {
        let names = |v: &[&MemberRef]| {
            v.iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let all: Vec<&MemberRef> = self.members.iter().collect();
        let mut out = format!(
            "etcd membership (members {}): remove {}, keep {}\n",
            self.source,
            names(&self.retired()),
            names(&self.kept())
        );
        if let Some(a) = &self.access {
            let client = a
                .client
                .as_ref()
                .map(|c| format!(", presenting {}", c.cert.display()))
                .unwrap_or_default();
            out.push_str(&format!(
                "  requests to {} verified against {}{client} ({})\n",
                self.endpoints.join(","),
                a.ca.display(),
                a.origin
            ));
        }
        if let Some(l) = &self.leader {
            out.push_str(&format!(
                "  now: {} members ({}), leader {}{}\n",
                all.len(),
                names(&all),
                self.name_of(l),
                self.db_size
                    .map(|s| format!(", keyspace {s} bytes"))
                    .unwrap_or_default()
            ));
        }
        out.push_str("  a removed member cannot be put back by a rollback: a failure after a removal stops the rollout, `certs rollout resume` continues\n");
        out
    }

    pub fn render_step(&self, n: usize) -> Option<String> {
        let a = self.action(n)?;
        Some(format!(
            "  {}. {COMPONENT}: {}\n     by hand: {}\n",
            n + 1,
            a.description,
            a.manual
        ))
    }
}

/// The live read of the plan failed, or the node does not say how to reach etcd: the members
/// its `--initial-cluster` names (no ids), for the checks that need no live cluster.
pub(super) fn from_initial_cluster(node: &[NodeComponent]) -> Vec<MemberRef> {
    let Some(ic) = node
        .iter()
        .find(|c| c.kind == "etcd")
        .and_then(|c| c.get("initial-cluster"))
    else {
        return vec![];
    };
    let mut out: Vec<MemberRef> = Vec::new();
    for part in ic.split(',') {
        let Some((name, url)) = part.trim().split_once('=') else {
            continue;
        };
        match out.iter_mut().find(|m| m.name == name) {
            Some(m) => m.peer_urls.push(url.to_string()),
            None => out.push(MemberRef {
                id: String::new(),
                name: name.to_string(),
                client_urls: vec![],
                peer_urls: vec![url.to_string()],
                healthy: None,
            }),
        }
    }
    out
}

/// `'…'` when a word needs it.
pub(super) fn sh(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=,@+%".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `ETCDCTL_API=3 etcdctl --endpoints=… --cacert=… --cert=… --key=…`.
pub fn etcdctl(endpoints: &[String], access: Option<&Access>) -> String {
    let mut out = format!(
        "ETCDCTL_API=3 etcdctl --endpoints={}",
        sh(&endpoints.join(","))
    );
    match access {
        Some(a) => {
            out.push_str(&format!(" --cacert={}", sh(&a.ca.to_string_lossy())));
            if let Some(c) = &a.client {
                out.push_str(&format!(
                    " --cert={} --key={}",
                    sh(&c.cert.to_string_lossy()),
                    sh(&c.key.to_string_lossy())
                ));
            }
        }
        None => out.push_str(" --cacert=CA --cert=CERT --key=KEY"),
    }
    out
}
