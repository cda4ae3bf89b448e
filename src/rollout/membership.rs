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

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::exec::{failed_prefix, Ended, Executor};
use super::journal::{Journal, StepState};
use super::plan::{Identity, Plan, Step};
use crate::endpoint::Target;
use crate::error::Result;
use crate::node::Component as NodeComponent;
use crate::preflight::etcd::{EtcdApi, Gateway, Member};
use crate::sys::clock::Stopwatch;
use crate::sys::tls::{self, ProbeOptions};

/// The component name of every membership step (events, journal notes, status).
pub const COMPONENT: &str = "etcd-membership";
/// Step kinds.
pub const SNAPSHOT: &str = "etcd-snapshot";
pub const MOVE_LEADER: &str = "etcd-move-leader";
pub const MEMBER_REMOVE: &str = "etcd-member-remove";
/// Journal notes of what a membership step changed start so (after `etcd-membership: `).
const DONE: &str = "done: ";

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
    fn as_member(&self) -> Member {
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

    fn key(&self) -> &str {
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

    fn name_of(&self, id: &str) -> String {
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
fn from_initial_cluster(node: &[NodeComponent]) -> Vec<MemberRef> {
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
fn sh(word: &str) -> String {
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

/// Adds the membership steps of retiring `remove` after the plan's file steps (the members
/// restart on their new certificates while the cluster still has every member, so a rolling
/// restart keeps quorum; the retired members leave last), with what the
/// live cluster says (read-only: member list, health, leader, keyspace size). Returns the
/// problems met (no access, no live cluster); [`check`] judges the rest.
pub fn plan(
    plan: &mut Plan,
    remove: &[String],
    access: std::result::Result<Access, String>,
    node: &[NodeComponent],
    admin: &dyn EtcdAdmin,
    snapshots: &Path,
) -> Vec<String> {
    let mut problems = Vec::new();
    let fallback = "the node's --initial-cluster (etcd not read)".to_string();
    let (access, members, live, source) = match access {
        Err(e) => {
            problems.push(format!("etcd membership: {e}"));
            (None, from_initial_cluster(node), false, fallback)
        }
        Ok(a) => match admin.members(&a, &a.bootstrap) {
            Ok(m) => {
                let source = format!("read live from {}", a.bootstrap);
                (Some(a), m, true, source)
            }
            Err(e) => {
                problems.push(format!(
                    "etcd membership: cannot read the member list from {}: {e}; the membership steps need the live cluster (or pass --no-etcd-membership)",
                    a.bootstrap
                ));
                (Some(a), from_initial_cluster(node), false, fallback)
            }
        },
    };
    let mut r = Retirement {
        remove: remove.to_vec(),
        access,
        live,
        source,
        members,
        leader: None,
        db_size: None,
        revision: None,
        snapshot_room: None,
        endpoints: vec![],
        actions: vec![],
    };
    if let (true, Some(a)) = (live, r.access.clone()) {
        for m in &mut r.members {
            m.healthy = Some(
                m.endpoint()
                    .is_some_and(|ep| admin.healthy(&a, ep).unwrap_or(false)),
            );
        }
        if let Ok(s) = admin.status(&a, &a.bootstrap) {
            r.leader = Some(s.leader).filter(|l| !l.is_empty() && l != "0");
            r.db_size = Some(s.db_size);
            r.revision = Some(s.revision);
        }
        r.snapshot_room = crate::sys::fs::free_bytes(snapshots);
    }
    let local = node
        .iter()
        .find(|c| c.kind == "etcd")
        .and_then(|c| c.get("name"))
        .map(str::to_string);
    let retired: Vec<MemberRef> = r.retired().into_iter().cloned().collect();
    let mut kept: Vec<MemberRef> = r.kept().into_iter().cloned().collect();
    let usable = |m: &&MemberRef| m.healthy != Some(false) && m.endpoint().is_some();
    let prefer = kept
        .iter()
        .filter(usable)
        .find(|m| Some(&m.name) == local.as_ref())
        .or_else(|| kept.iter().find(usable))
        .or(kept.first())
        .cloned();
    // The preferred member (this node's, when kept and healthy) is asked first.
    kept.sort_by_key(|m| Some(m.key()) != prefer.as_ref().map(MemberRef::key));
    r.endpoints = kept
        .iter()
        .filter_map(|m| m.endpoint().map(str::to_string))
        .collect();
    let mut planned: Vec<(&str, Action, String, String)> = Vec::new();
    if let (Some(to), false) = (prefer, retired.is_empty()) {
        let access = r.access.as_ref();
        let ep = to
            .endpoint()
            .map(str::to_string)
            .unwrap_or_else(|| r.bootstrap_or_none());
        let kept_names = kept
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let retired_eps: Vec<String> = retired
            .iter()
            .filter_map(|m| m.endpoint().map(str::to_string))
            .collect();
        let leader_now = match &r.leader {
            Some(l) if retired.iter().any(|m| &m.id == l) => {
                format!("now {}, retired", r.name_of(l))
            }
            Some(l) => format!("now {}, kept", r.name_of(l)),
            None => "leader unknown".into(),
        };
        planned.push((
            SNAPSHOT,
            Action::Snapshot {
                dir: snapshots.to_path_buf(),
                endpoint: ep.clone(),
            },
            format!(
                "snapshot the keyspace over {ep} to {}/<time>.db (size and revision recorded, etcd's SHA-256 verified)",
                snapshots.display()
            ),
            format!(
                "{} snapshot save {}/\"$(date -u +%Y%m%dT%H%M%SZ)\".db",
                etcdctl(std::slice::from_ref(&ep), access),
                sh(&snapshots.to_string_lossy())
            ),
        ));
        planned.push((
            MOVE_LEADER,
            Action::MoveLeader { to: to.clone() },
            format!(
                "if a retired member leads ({leader_now}), move leadership to {}; gate: a kept member leads",
                to.describe()
            ),
            format!(
                "{} move-leader {}   # acts only if one of these retired members leads",
                etcdctl(&retired_eps, access),
                to.hex()
            ),
        ));
        for m in &retired {
            planned.push((
                MEMBER_REMOVE,
                Action::Remove { member: m.clone() },
                format!(
                    "member remove {} ({}, {}); first: every kept member healthy, leadership off it; gate: {kept_names} healthy, a leader among them, {} no longer listed",
                    m.name,
                    m.hex(),
                    m.endpoint()
                        .or(m.peer_urls.first().map(String::as_str))
                        .unwrap_or("no URL known"),
                    m.name
                ),
                format!(
                    "{} member remove {}",
                    etcdctl(&r.endpoints, access),
                    m.hex()
                ),
            ));
        }
    }
    let mut steps = Vec::new();
    let base = plan.steps.len();
    for (step, (kind, action, description, manual)) in planned.into_iter().enumerate() {
        let step = base + step;
        steps.push(Step {
            component: COMPONENT.into(),
            kind: kind.into(),
            restart: None,
            files: vec![],
            reads: vec![],
            gates: vec![],
            note: Some(description.clone()),
            from: "bundle.json etcd_membership".into(),
        });
        r.actions.push(Planned {
            step,
            action,
            description,
            manual,
        });
    }
    plan.steps.extend(steps);
    plan.etcd = Some(r);
    debug_assert!(plan.steps[base..].iter().all(|s| s.component == COMPONENT));
    problems
}

impl Retirement {
    fn bootstrap_or_none(&self) -> String {
        self.access
            .as_ref()
            .map_or_else(|| "https://ETCD:2379".into(), |a| a.bootstrap.clone())
    }
}

/// The most a snapshot may hold whatever the free space: far above any etcd keyspace (etcd
/// warns above an 8 GiB quota), it only stops a stream that never ends.
pub const SNAPSHOT_CAP: u64 = 16 << 30;

/// The snapshot file of a keyspace of `db_size` bytes: the database, then its SHA-256.
fn snapshot_size(db_size: u64) -> u64 {
    db_size.saturating_add(32)
}

fn no_room(db_size: u64, dir: &Path, room: u64) -> String {
    format!(
        "the keyspace is {db_size} bytes, its snapshot does not fit in the {room} bytes free for {}: free space there or give --state-dir on a larger file system; or take the snapshot by hand (the plan prints the etcdctl line), then run the member steps by hand too, or the rollout with --no-etcd-membership",
        dir.display()
    )
}

/// Everything that refuses a retirement before anything changes, one line each: no member
/// named, a name that designates no member or several, no member left, a removal (one at a
/// time, in order) that would leave fewer healthy members than a quorum, a kept member
/// unhealthy or no leader now, a keyspace whose snapshot does not fit in the free space of the
/// state dir.
pub fn check(r: &Retirement) -> Vec<String> {
    let mut out = Vec::new();
    let p = "etcd membership";
    if r.remove.is_empty() {
        out.push(format!("{p}: bundle.json's etcd_membership.remove names no member; name the members to remove, or pass --no-etcd-membership"));
        return out;
    }
    let listing = || {
        r.members
            .iter()
            .map(|m| {
                let hosts: Vec<String> = m
                    .peer_urls
                    .iter()
                    .chain(&m.client_urls)
                    .filter_map(|u| crate::endpoint::url_host(u))
                    .fold(Vec::new(), |mut v, h| {
                        if !v.contains(&h) {
                            v.push(h);
                        }
                        v
                    });
                format!("{} ({})", m.name, hosts.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    for who in &r.remove {
        match r.matches(who).as_slice() {
            [] => out.push(format!(
                "{p}: `{who}` is not a member of the etcd cluster (members {}: {})",
                r.source,
                listing()
            )),
            [_] => {}
            many => out.push(format!(
                "{p}: `{who}` designates {} members ({}); name one member by its name",
                many.len(),
                many.iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    let retired = r.retired();
    let kept = r.kept();
    let names = |v: &[&MemberRef]| {
        v.iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !retired.is_empty() && kept.is_empty() {
        out.push(format!(
            "{p}: removing {} would leave no etcd member",
            names(&retired)
        ));
    } else if r.live && !retired.is_empty() {
        // One removal at a time, in order: each is committed by a quorum of the members listed
        // then, and the members left must still hold one.
        let healthy = |v: &[&MemberRef]| v.iter().filter(|m| m.healthy == Some(true)).count();
        let mut now: Vec<&MemberRef> = r.members.iter().collect();
        let mut gone: Vec<&MemberRef> = Vec::new();
        let sick = |v: &[&MemberRef]| {
            let s: Vec<&MemberRef> = v
                .iter()
                .copied()
                .filter(|x| x.healthy != Some(true))
                .collect();
            names(&s)
        };
        for m in &retired {
            if healthy(&now) * 2 <= now.len() {
                out.push(format!(
                    "{p}: no quorum to commit the removal of {}: only {} of {} healthy ({} not); bring them back first",
                    m.name,
                    healthy(&now),
                    names(&now),
                    sick(&now)
                ));
                break;
            }
            gone.push(m);
            now.retain(|x| x.key() != m.key());
            if healthy(&now) * 2 <= now.len() {
                out.push(format!(
                    "{p}: removing {} would lose quorum: {} would be left, only {} of them healthy ({} not); bring them back first",
                    names(&gone),
                    names(&now),
                    healthy(&now),
                    sick(&now)
                ));
                break;
            }
        }
    }
    if r.live {
        for m in &kept {
            match (m.healthy, m.endpoint()) {
                (_, None) => out.push(format!(
                    "{p}: kept member {} has no https client URL to be asked on ({})",
                    m.describe(),
                    m.client_urls.join(", ")
                )),
                (Some(false), Some(ep)) => out.push(format!(
                    "{p}: kept member {} is not healthy at {ep}: the quorum gate after a removal could not pass; bring it back first",
                    m.describe()
                )),
                _ => {}
            }
        }
        if r.leader.is_none() && !retired.is_empty() {
            out.push(format!("{p}: the cluster reports no leader now"));
        }
        if let (Some(size), Some(room)) = (r.db_size, r.snapshot_room) {
            if snapshot_size(size) > room {
                let dir = r
                    .actions
                    .iter()
                    .find_map(|a| match &a.action {
                        Action::Snapshot { dir, .. } => Some(dir.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| PathBuf::from("the snapshot directory"));
                out.push(format!("{p}: {}", no_room(size, &dir, room)));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

/// What `/v3/maintenance/status` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub member_id: String,
    /// "0" when there is none.
    pub leader: String,
    pub revision: u64,
    pub db_size: u64,
}

/// The etcd requests the membership steps make; one real implementation ([`GatewayAdmin`]).
pub trait EtcdAdmin {
    fn members(
        &self,
        access: &Access,
        endpoint: &str,
    ) -> std::result::Result<Vec<MemberRef>, String>;
    fn status(&self, access: &Access, endpoint: &str) -> std::result::Result<Status, String>;
    fn healthy(&self, access: &Access, endpoint: &str) -> std::result::Result<bool, String>;
    /// Streams the snapshot as etcdctl saves it (the database, then etcd's SHA-256 of it) into
    /// `out` as it arrives: each read waits at most `idle`, and a snapshot of more than `limit`
    /// bytes fails (as soon as etcd announces it, when it does).
    fn snapshot(
        &self,
        access: &Access,
        endpoint: &str,
        idle: Duration,
        limit: u64,
        out: &mut dyn FnMut(&[u8]) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String>;
    /// Asks the leader (at `leader`) to hand leadership to member `to` (decimal id).
    fn move_leader(
        &self,
        access: &Access,
        leader: &str,
        to: &str,
    ) -> std::result::Result<(), String>;
    fn remove(&self, access: &Access, endpoint: &str, id: &str) -> std::result::Result<(), String>;
}

/// For runs whose plan has no membership steps.
pub struct NoEtcd;

impl EtcdAdmin for NoEtcd {
    fn members(&self, _: &Access, _: &str) -> std::result::Result<Vec<MemberRef>, String> {
        Err("no etcd access in this run".into())
    }
    fn status(&self, _: &Access, _: &str) -> std::result::Result<Status, String> {
        Err("no etcd access in this run".into())
    }
    fn healthy(&self, _: &Access, _: &str) -> std::result::Result<bool, String> {
        Err("no etcd access in this run".into())
    }
    fn snapshot(
        &self,
        _: &Access,
        _: &str,
        _: Duration,
        _: u64,
        _: &mut dyn FnMut(&[u8]) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        Err("no etcd access in this run".into())
    }
    fn move_leader(&self, _: &Access, _: &str, _: &str) -> std::result::Result<(), String> {
        Err("no etcd access in this run".into())
    }
    fn remove(&self, _: &Access, _: &str, _: &str) -> std::result::Result<(), String> {
        Err("no etcd access in this run".into())
    }
}

/// The v3 JSON gateway over [`crate::sys::tls`]; member list and health through preflight's
/// [`Gateway`].
pub struct GatewayAdmin {
    /// Bound on one request.
    pub timeout: Duration,
}

impl GatewayAdmin {
    fn opts(&self, a: &Access, timeout: Duration) -> std::result::Result<ProbeOptions, String> {
        let read = |p: &Path| crate::sys::fs::read_file(p).map_err(|e| e.to_string());
        let roots =
            tls::certs_from_pem(&read(&a.ca)?).map_err(|e| format!("{}: {e}", a.ca.display()))?;
        let client_identity = match &a.client {
            Some(id) => Some((
                tls::certs_from_pem(&read(&id.cert)?)
                    .map_err(|e| format!("{}: {e}", id.cert.display()))?,
                tls::key_from_pem(&read(&id.key)?)
                    .map_err(|e| format!("{}: {e}", id.key.display()))?,
            )),
            None => None,
        };
        Ok(ProbeOptions {
            roots: Some(roots),
            insecure: false,
            timeout,
            client_identity,
            server_name: None,
        })
    }

    fn request(
        &self,
        a: &Access,
        endpoint: &str,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> std::result::Result<Vec<u8>, String> {
        let target: Target = endpoint.parse().map_err(|e| format!("{e}"))?;
        let opts = self.opts(a, timeout)?;
        let resp = tls::https_request(
            &target,
            "POST",
            path,
            Some(body.to_string().as_bytes()),
            &opts,
        )
        .map_err(|e| e.to_string())?;
        if resp.status != 200 {
            return Err(gateway_error(endpoint, path, resp.status, &resp.body));
        }
        Ok(resp.body)
    }

    fn post(
        &self,
        a: &Access,
        endpoint: &str,
        path: &str,
        body: &Value,
    ) -> std::result::Result<Value, String> {
        let bytes = self.request(a, endpoint, path, body, self.timeout)?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{endpoint}{path}: not JSON ({e})"))
    }
}

/// `{"error": "etcdserver: not leader", "message": …, "code": 9}` in a few words.
fn gateway_error(endpoint: &str, path: &str, status: u16, body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let said = v["message"]
        .as_str()
        .or(v["error"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    format!("{endpoint}{path} answered {status}: {said}")
}

fn uint(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| {
        if v.is_null() {
            String::new()
        } else {
            v.to_string()
        }
    })
}

impl EtcdAdmin for GatewayAdmin {
    fn members(&self, a: &Access, endpoint: &str) -> std::result::Result<Vec<MemberRef>, String> {
        let target: Target = endpoint.parse().map_err(|e| format!("{e}"))?;
        let gw = Gateway {
            opts: self.opts(a, self.timeout)?,
        };
        Ok(gw
            .members(&target)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|m| MemberRef {
                id: m.id,
                name: m.name,
                client_urls: m.client_urls,
                peer_urls: m.peer_urls,
                healthy: None,
            })
            .collect())
    }

    fn status(&self, a: &Access, endpoint: &str) -> std::result::Result<Status, String> {
        let v = self.post(a, endpoint, "/v3/maintenance/status", &json!({}))?;
        Ok(Status {
            member_id: text(&v["header"]["member_id"]),
            leader: text(&v["leader"]),
            revision: uint(&v["header"]["revision"]),
            db_size: uint(&v["dbSize"]),
        })
    }

    fn healthy(&self, a: &Access, endpoint: &str) -> std::result::Result<bool, String> {
        let target: Target = endpoint.parse().map_err(|e| format!("{e}"))?;
        Gateway {
            opts: self.opts(a, self.timeout)?,
        }
        .healthy(&target)
        .map_err(|e| e.to_string())
    }

    fn snapshot(
        &self,
        a: &Access,
        endpoint: &str,
        idle: Duration,
        limit: u64,
        out: &mut dyn FnMut(&[u8]) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        const PATH: &str = "/v3/maintenance/snapshot";
        let target: Target = endpoint.parse().map_err(|e| format!("{e}"))?;
        // Connecting and the answer's head within the request timeout (or `idle`, if longer);
        // then the body by progress.
        let opts = self.opts(a, self.timeout.max(idle))?;
        let limits = tls::StreamLimits {
            idle,
            max_body: max_stream(limit),
        };
        let mut resp = tls::https_stream(&target, "POST", PATH, Some(b"{}"), &opts, limits)
            .map_err(|e| e.to_string())?;
        if resp.status != 200 {
            let mut said = Vec::new();
            let _ = (&mut resp.body).take(64 * 1024).read_to_end(&mut said);
            return Err(gateway_error(endpoint, PATH, resp.status, &said));
        }
        let mut decoder = SnapshotDecoder::new(limit);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = resp.body.read(&mut buf).map_err(|e| {
                format!(
                    "{endpoint}{PATH}: reading the stream after {} message(s), {} bytes of snapshot: {e}",
                    decoder.messages(),
                    decoder.decoded()
                )
            })?;
            if n == 0 {
                break;
            }
            decoder
                .feed(&buf[..n], out)
                .map_err(|e| format!("{endpoint}{PATH}: {e}"))?;
        }
        decoder
            .finish()
            .map(|_| ())
            .map_err(|e| format!("{endpoint}{PATH}: {e}"))
    }

    fn move_leader(&self, a: &Access, leader: &str, to: &str) -> std::result::Result<(), String> {
        self.post(
            a,
            leader,
            "/v3/maintenance/transfer-leadership",
            &json!({ "targetID": to }),
        )
        .map(|_| ())
    }

    fn remove(&self, a: &Access, endpoint: &str, id: &str) -> std::result::Result<(), String> {
        self.post(
            a,
            endpoint,
            "/v3/cluster/member/remove",
            &json!({ "ID": id }),
        )
        .map(|_| ())
    }
}

/// The most gateway bytes read for a snapshot of at most `limit` bytes: base64 is 4/3 of the
/// bytes, plus about 100 bytes of JSON per 32 KiB message; twice, and a MiB, is ample.
fn max_stream(limit: u64) -> u64 {
    limit.saturating_mul(2).saturating_add(1 << 20)
}

/// The largest gateway message taken (etcd sends 32 KiB of snapshot per message, about 44 KB of
/// JSON): what bounds the decoder's memory.
const MAX_MESSAGE: usize = 4 << 20;

/// The gateway's answer to a server-streaming call, decoded as it arrives: one JSON object per
/// message, `{"result":{"blob":"<base64>","remaining_bytes":"…"}}` (etcd 3.4 leaves out the
/// header and a zero `remaining_bytes`), or `{"error":{…}}` when the stream fails; the gateway
/// ends each with a newline, but objects are found by their braces, so any split of the bytes
/// (across an object, a string, a base64 quantum) and any whitespace between objects decode the
/// same. Each message's blob goes to the sink as soon as its object is complete: memory holds
/// one message.
#[derive(Debug)]
pub struct SnapshotDecoder {
    /// The bytes of the object under way.
    pending: Vec<u8>,
    /// Nesting depth inside the object under way (0 between objects).
    depth: usize,
    in_string: bool,
    escaped: bool,
    messages: usize,
    decoded: u64,
    limit: u64,
}

impl SnapshotDecoder {
    /// A decoder refusing more than `limit` bytes of snapshot.
    pub fn new(limit: u64) -> SnapshotDecoder {
        SnapshotDecoder {
            pending: Vec::new(),
            depth: 0,
            in_string: false,
            escaped: false,
            messages: 0,
            decoded: 0,
            limit,
        }
    }

    /// Messages decoded so far.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Snapshot bytes handed to the sink so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Takes the next bytes of the answer, handing the blob of each message completed to `out`.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        out: &mut dyn FnMut(&[u8]) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        // Where the object under way starts in `bytes` (0: it began in an earlier feed).
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if self.depth == 0 {
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => continue,
                    b'{' => {
                        self.depth = 1;
                        start = i;
                        continue;
                    }
                    _ => {
                        return Err(format!(
                            "after {} message(s): {:?} where a JSON object should start",
                            self.messages, b as char
                        ))
                    }
                }
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.take(&bytes[start..=i])?;
                        let message = std::mem::take(&mut self.pending);
                        let done = self.message(&message, out);
                        self.pending = message;
                        self.pending.clear();
                        done?;
                    }
                }
                _ => {}
            }
        }
        if self.depth > 0 {
            self.take(&bytes[start..])?;
        }
        Ok(())
    }

    fn take(&mut self, part: &[u8]) -> std::result::Result<(), String> {
        if self.pending.len() + part.len() > MAX_MESSAGE {
            return Err(format!(
                "message {} is longer than {MAX_MESSAGE} bytes",
                self.messages + 1
            ));
        }
        self.pending.extend_from_slice(part);
        Ok(())
    }

    fn message(
        &mut self,
        text: &[u8],
        out: &mut dyn FnMut(&[u8]) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        use base64::Engine;
        let n = self.messages + 1;
        let v: Value =
            serde_json::from_slice(text).map_err(|e| format!("message {n} is not JSON ({e})"))?;
        if !v["error"].is_null() {
            let e = &v["error"];
            let said = e["message"]
                .as_str()
                .or(e.as_str())
                .map_or_else(|| e.to_string(), str::to_string);
            return Err(format!(
                "the stream failed after {} message(s): {said}",
                self.messages
            ));
        }
        let blob = v["result"]["blob"].as_str().unwrap_or("");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .map_err(|e| format!("message {n} has a blob that is not base64 ({e})"))?;
        self.messages = n;
        self.decoded += bytes.len() as u64;
        // etcd says how much follows: refuse what cannot fit before it is written.
        let remaining = uint(&v["result"]["remaining_bytes"]);
        let announced = self.decoded.saturating_add(remaining);
        if announced > self.limit {
            let what = if remaining > 0 {
                format!("{announced} bytes announced")
            } else {
                format!("{} bytes received", self.decoded)
            };
            return Err(format!(
                "the snapshot is larger than the {} bytes it may take ({what} after {n} message(s))",
                self.limit
            ));
        }
        if !bytes.is_empty() {
            out(&bytes)?;
        }
        Ok(())
    }

    /// The end of the answer: every message complete, at least one. Returns the bytes decoded.
    pub fn finish(self) -> std::result::Result<u64, String> {
        if self.depth > 0 {
            return Err(format!(
                "the answer ends inside message {} ({} bytes of it)",
                self.messages + 1,
                self.pending.len()
            ));
        }
        if self.messages == 0 {
            return Err("the answer holds no snapshot message".into());
        }
        Ok(self.decoded)
    }
}

/// The snapshot's bytes, checked as they pass: a bbolt database (its meta page's magic
/// 0xED0CDAED at byte 16) followed by etcd's SHA-256 of it. The digest runs over everything but
/// the last 32 bytes seen, which are held back: the end of the stream tells they were the sum.
pub struct SnapshotSum {
    head: Vec<u8>,
    digest: aws_lc_rs::digest::Context,
    /// The last (at most) 32 bytes, not digested yet.
    tail: Vec<u8>,
    total: u64,
}

impl Default for SnapshotSum {
    fn default() -> Self {
        SnapshotSum::new()
    }
}

impl SnapshotSum {
    pub fn new() -> SnapshotSum {
        SnapshotSum {
            head: Vec::with_capacity(20),
            digest: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            tail: Vec::with_capacity(64),
            total: 0,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.head.len() < 20 {
            let n = (20 - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
        }
        if bytes.len() >= 32 {
            self.digest.update(&self.tail);
            let (body, last) = bytes.split_at(bytes.len() - 32);
            self.digest.update(body);
            self.tail.clear();
            self.tail.extend_from_slice(last);
        } else {
            self.tail.extend_from_slice(bytes);
            if self.tail.len() > 32 {
                let over = self.tail.len() - 32;
                self.digest.update(&self.tail[..over]);
                self.tail.drain(..over);
            }
        }
    }

    /// Bytes seen.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Checks the snapshot seen; returns the database's size.
    pub fn finish(self) -> std::result::Result<u64, String> {
        if self.total < 32 + 20 {
            return Err(format!("{} bytes: too short for a snapshot", self.total));
        }
        if self.head[16..20] != [0xED, 0xDA, 0x0C, 0xED] {
            return Err("not a bbolt database (no meta page magic at byte 16)".into());
        }
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let want = hex(&self.tail);
        let got = hex(self.digest.finish().as_ref());
        if got != want {
            return Err(format!(
                "its SHA-256 is {got}, etcd sent {want}: the snapshot is damaged"
            ));
        }
        Ok(self.total - 32)
    }
}

/// Checks a snapshot as etcd sends it, whole: see [`SnapshotSum`]. Returns the database's size.
pub fn verify_snapshot(bytes: &[u8]) -> std::result::Result<usize, String> {
    let mut sum = SnapshotSum::new();
    sum.push(bytes);
    sum.finish().map(|n| n as usize)
}

/// A new name for a snapshot in `dir` (created, 0700, if missing): `<time>.db`, `<time>-2.db`, …
fn snapshot_path(dir: &Path, now: i64) -> std::result::Result<PathBuf, String> {
    crate::sys::fs::create_new_dir(dir)
        .or_else(|e| if dir.is_dir() { Ok(()) } else { Err(e) })
        .map_err(|e| e.to_string())?;
    let stamp = crate::duration::rfc3339(now).replace([':', '-'], "");
    let mut path = dir.join(format!("{stamp}.db"));
    let mut n = 2;
    while !crate::sys::fs::is_absent(&path) {
        path = dir.join(format!("{stamp}-{n}.db"));
        n += 1;
    }
    Ok(path)
}

// ---------------------------------------------------------------------------------------------
// Running the steps
// ---------------------------------------------------------------------------------------------

/// Whether step `i` of the plan is a membership step.
pub fn is_membership(plan: &Plan, i: usize) -> bool {
    plan.etcd.as_ref().is_some_and(|r| r.action(i).is_some())
}

/// Why a membership step stopped, and whether its change (a removal) was made.
pub(super) struct Stop {
    reason: String,
    applied: bool,
}

fn not_applied(reason: String) -> Stop {
    Stop {
        reason,
        applied: false,
    }
}

/// The cluster as the steps see it: the kept members' endpoints, the retired ids.
struct Live<'x> {
    admin: &'x dyn EtcdAdmin,
    access: &'x Access,
    endpoints: Vec<String>,
    retired: Vec<String>,
}

impl Live<'_> {
    /// The first endpoint's answer; every error when none answers.
    fn any<T>(
        &self,
        f: impl Fn(&str) -> std::result::Result<T, String>,
    ) -> std::result::Result<T, String> {
        let mut errors = Vec::new();
        for ep in &self.endpoints {
            match f(ep) {
                Ok(v) => return Ok(v),
                Err(e) => errors.push(e),
            }
        }
        Err(if errors.is_empty() {
            "no endpoint to ask".into()
        } else {
            errors.join("; ")
        })
    }

    fn members(&self) -> std::result::Result<Vec<MemberRef>, String> {
        self.any(|ep| self.admin.members(self.access, ep))
    }

    fn kept(&self, list: &[MemberRef]) -> Vec<MemberRef> {
        list.iter()
            .filter(|m| !self.retired.contains(&m.id))
            .cloned()
            .collect()
    }

    fn leader(&self) -> std::result::Result<String, String> {
        let s = self.any(|ep| self.admin.status(self.access, ep))?;
        if s.leader.is_empty() || s.leader == "0" {
            Err("the cluster has no leader".into())
        } else {
            Ok(s.leader)
        }
    }

    fn healthy(&self, m: &MemberRef) -> std::result::Result<(), String> {
        let ep = m
            .endpoint()
            .ok_or_else(|| format!("{} has no https client URL", m.describe()))?;
        match self.admin.healthy(self.access, ep) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("{} reports unhealthy at {ep}", m.describe())),
            Err(e) => Err(format!("{} at {ep}: {e}", m.describe())),
        }
    }

    /// The gate after a removal (and after a leader move): `gone` no longer listed, every
    /// kept member healthy, a kept member leading.
    fn quorum(&self, gone: Option<&MemberRef>) -> std::result::Result<String, String> {
        let list = self.members()?;
        if let Some(m) = gone {
            if list.iter().any(|x| x.id == m.id) {
                return Err(format!("{} is still listed", m.describe()));
            }
        }
        let kept = self.kept(&list);
        if kept.is_empty() {
            return Err("no kept member is listed".into());
        }
        for k in &kept {
            self.healthy(k)?;
        }
        let leader = self.leader()?;
        let Some(l) = kept.iter().find(|k| k.id == leader) else {
            return Err(format!("the leader ({leader}) is not a kept member"));
        };
        Ok(format!(
            "{} healthy, {} leads",
            kept.iter()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            l.describe()
        ))
    }
}

impl Executor<'_> {
    /// Retries `f` every interval until it passes or the health timeout is spent.
    fn until(
        &self,
        mut f: impl FnMut() -> std::result::Result<String, String>,
    ) -> std::result::Result<String, String> {
        let t = Stopwatch::start();
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if t.elapsed() >= self.timing.deadline => {
                    return Err(format!(
                        "not within {}s: {e}",
                        self.timing.deadline.as_secs()
                    ))
                }
                Err(_) => crate::sys::clock::sleep(self.timing.interval),
            }
        }
    }

    fn done(&self, j: &mut Journal, what: &str) -> std::result::Result<(), Stop> {
        j.note((self.now)(), format!("{COMPONENT}: {DONE}{what}"));
        self.save(j).map_err(|e| not_applied(e.to_string()))
    }

    /// Runs membership step `i` (idempotent: what is already done is checked, not redone).
    pub(super) fn run_membership(
        &mut self,
        j: &mut Journal,
        i: usize,
    ) -> std::result::Result<(), Stop> {
        let r = j
            .plan
            .etcd
            .clone()
            .ok_or_else(|| not_applied("the plan has no etcd membership".into()))?;
        let planned = r
            .action(i)
            .cloned()
            .ok_or_else(|| not_applied(format!("step {} is no membership step", i + 1)))?;
        let access = r
            .access
            .clone()
            .ok_or_else(|| not_applied("the plan has no way to reach etcd".into()))?;
        let mut endpoints = r.endpoints.clone();
        if !endpoints.contains(&access.bootstrap) {
            endpoints.push(access.bootstrap.clone());
        }
        let live = Live {
            admin: self.etcd,
            access: &access,
            endpoints,
            retired: r.retired().iter().map(|m| m.id.clone()).collect(),
        };
        j.steps[i] = StepState::Swapping;
        self.save(j).map_err(|e| not_applied(e.to_string()))?;
        match &planned.action {
            Action::Snapshot { dir, endpoint } => self.snapshot_step(j, &live, dir, endpoint)?,
            Action::MoveLeader { to } => {
                let t = Stopwatch::start();
                self.event(COMPONENT, "move-leader", "start", t, None);
                match self.move_off(&live, to) {
                    Ok((moved, what)) => {
                        if moved {
                            self.done(j, &what)?;
                        }
                        self.event(COMPONENT, "move-leader", "ok", t, Some(what))
                    }
                    Err(stop) => {
                        self.event(
                            COMPONENT,
                            "move-leader",
                            "failed",
                            t,
                            Some(stop.reason.clone()),
                        );
                        return Err(stop);
                    }
                }
            }
            Action::Remove { member } => {
                let t = Stopwatch::start();
                self.event(
                    COMPONENT,
                    "member-remove",
                    "start",
                    t,
                    Some(member.describe()),
                );
                match self.remove_member(j, i, &live, &r, member) {
                    Ok(what) => self.event(COMPONENT, "member-remove", "ok", t, Some(what)),
                    Err(stop) => {
                        self.event(
                            COMPONENT,
                            "member-remove",
                            "failed",
                            t,
                            Some(stop.reason.clone()),
                        );
                        return Err(stop);
                    }
                }
            }
        }
        j.steps[i] = StepState::Healthy;
        self.save(j).map_err(|e| Stop {
            reason: e.to_string(),
            applied: matches!(planned.action, Action::Remove { .. }),
        })
    }

    fn snapshot_step(
        &mut self,
        j: &mut Journal,
        live: &Live,
        dir: &Path,
        endpoint: &str,
    ) -> std::result::Result<(), Stop> {
        let t = Stopwatch::start();
        self.event(
            COMPONENT,
            "snapshot",
            "start",
            t,
            Some(format!("over {endpoint} into {}", dir.display())),
        );
        let taken = (|| -> std::result::Result<String, String> {
            (self.fault)("etcd snapshot")?;
            let before = live.admin.status(live.access, endpoint)?;
            let path = snapshot_path(dir, (self.now)())?;
            let room = crate::sys::fs::free_bytes(dir);
            if let Some(room) = room.filter(|&r| snapshot_size(before.db_size) > r) {
                return Err(no_room(before.db_size, dir, room));
            }
            let limit = room.unwrap_or(SNAPSHOT_CAP).min(SNAPSHOT_CAP);
            // Into a temp file beside `path` (removed on any failure), checked on the way.
            let mut file =
                crate::sys::fs::StreamedFile::create(&path, 0o600).map_err(|e| e.to_string())?;
            let mut sum = SnapshotSum::new();
            let idle = self.timing.deadline.max(Duration::from_secs(1));
            live.admin
                .snapshot(live.access, endpoint, idle, limit, &mut |bytes| {
                    sum.push(bytes);
                    file.write(bytes).map_err(|e| e.to_string())
                })?;
            let total = sum.total();
            sum.finish()?;
            let revision = match live.admin.status(live.access, endpoint) {
                Ok(after) if after.revision != before.revision => format!(
                    "revision between {} and {} (written to while saved)",
                    before.revision, after.revision
                ),
                _ => format!("revision {}", before.revision),
            };
            let written = file.commit().map_err(|e| e.to_string())?;
            if written != total {
                return Err(format!(
                    "{} holds {written} bytes, {total} were received",
                    path.display()
                ));
            }
            Ok(format!(
                "snapshot saved to {}: {total} bytes, {revision}, etcd's SHA-256 verified",
                path.display()
            ))
        })();
        match taken {
            Ok(what) => {
                self.event(COMPONENT, "snapshot", "ok", t, Some(what.clone()));
                self.done(j, &what)
            }
            Err(e) => {
                let reason = format!("snapshot over {endpoint}: {e}");
                self.event(COMPONENT, "snapshot", "failed", t, Some(reason.clone()));
                Err(not_applied(reason))
            }
        }
    }

    /// Hands leadership to a kept member (`to` when it is healthy) if a retired member leads,
    /// and waits until a kept member does; retried within the health timeout (an election under
    /// way, a leader just elected). Says whether it moved leadership, and how it stands.
    fn move_off(&self, live: &Live, to: &MemberRef) -> std::result::Result<(bool, String), Stop> {
        let describe = |list: &[MemberRef], id: &str| {
            list.iter()
                .find(|m| m.id == id)
                .map_or_else(|| format!("member {id}"), MemberRef::describe)
        };
        // The last request made (from, to), and whether the leader accepted it.
        let mut asked: Option<(String, String)> = None;
        let mut accepted = false;
        let outcome = self.until(|| {
            let list = live.members()?;
            let leader = live.leader()?;
            if !live.retired.contains(&leader) {
                return Ok(describe(&list, &leader));
            }
            if accepted {
                return Err(format!("{} still leads", describe(&list, &leader)));
            }
            let from = list
                .iter()
                .find(|m| m.id == leader)
                .ok_or_else(|| format!("the leader {leader} is not in the member list"))?;
            let target = live
                .kept(&list)
                .into_iter()
                .filter(|k| live.healthy(k).is_ok())
                .min_by_key(|k| k.id != to.id)
                .ok_or("no kept member is healthy to take it")?;
            let ep = from
                .endpoint()
                .ok_or_else(|| format!("the leader {} has no https client URL", from.describe()))?;
            (self.fault)("etcd move-leader")?;
            asked = Some((from.describe(), target.describe()));
            live.admin
                .move_leader(live.access, ep, &target.id)
                .map_err(|e| format!("{} refused: {e}", from.describe()))?;
            accepted = true;
            Err(format!("{} still leads", from.describe()))
        });
        match (asked, outcome) {
            (None, Ok(leader)) => Ok((
                false,
                format!("{leader} leads and is kept: nothing to move"),
            )),
            (None, Err(e)) => Err(not_applied(format!("moving leadership: {e}"))),
            (Some((from, target)), Ok(leads)) => Ok((
                true,
                format!("leadership moved from {from} to {target}: {leads} leads"),
            )),
            (Some((from, target)), Err(e)) => Err(not_applied(format!(
                "moving leadership: asked {from} to hand it to {target}, but no kept member led {e}"
            ))),
        }
    }

    /// `member remove`, once it is still listed, every kept member is healthy, the members left
    /// keep a quorum and leadership is off it (retried within the health timeout: etcd refuses a
    /// removal while its leader has not been in touch with a quorum for 5 s); then the quorum
    /// gate.
    fn remove_member(
        &self,
        j: &mut Journal,
        i: usize,
        live: &Live,
        r: &Retirement,
        m: &MemberRef,
    ) -> std::result::Result<String, Stop> {
        let before = |e: String| not_applied(format!("before removing {}: {e}", m.describe()));
        let listed = |list: &[MemberRef]| list.iter().any(|x| x.id == m.id);
        let was_listed = listed(&live.members().map_err(before)?);
        let to = r.actions.iter().find_map(|a| match &a.action {
            Action::MoveLeader { to } => Some(to.clone()),
            _ => None,
        });
        let mut said = Vec::new();
        if was_listed {
            let mut notes: Vec<String> = Vec::new();
            let tried = self.until(|| {
                let list = live.members()?;
                if !listed(&list) {
                    return Ok(String::new());
                }
                let kept = live.kept(&list);
                for k in &kept {
                    live.healthy(k)
                        .map_err(|e| format!("kept member not healthy: {e}"))?;
                }
                let up: Vec<&MemberRef> =
                    list.iter().filter(|x| live.healthy(x).is_ok()).collect();
                if up.len() * 2 <= list.len() {
                    return Err(format!(
                        "only {} of the {} members are healthy: no quorum to commit a removal",
                        up.len(),
                        list.len()
                    ));
                }
                let remaining = list.len() - 1;
                let healthy = up.iter().filter(|x| x.id != m.id).count();
                if healthy * 2 <= remaining {
                    return Err(format!(
                        "only {healthy} of the {remaining} members left after it would be healthy: no quorum"
                    ));
                }
                if live.leader()? == m.id {
                    let to = to
                        .clone()
                        .or_else(|| kept.first().cloned())
                        .ok_or("no kept member to lead")?;
                    if let (true, what) = self.move_off(live, &to).map_err(|s| s.reason)? {
                        notes.push(what);
                    }
                }
                (self.fault)("etcd member remove")?;
                match live.any(|ep| live.admin.remove(live.access, ep, &m.id)) {
                    Ok(()) => Ok(String::new()),
                    // The change may have committed though its answer was lost.
                    Err(_) if live.members().is_ok_and(|l| !listed(&l)) => Ok(String::new()),
                    Err(e) => Err(format!("member remove: {e}")),
                }
            });
            for n in notes {
                self.done(j, &n)?;
                said.push(n);
            }
            tried.map_err(before)?;
            j.steps[i] = StepState::Swapped;
            let what = format!("member {} removed", m.describe());
            self.done(j, &what).map_err(|s| Stop {
                reason: s.reason,
                applied: true,
            })?;
            said.push(what);
        } else {
            said.push(format!(
                "{} is no longer a member (removed before)",
                m.describe()
            ));
        }
        let gate = self.until(|| live.quorum(Some(m))).map_err(|e| Stop {
            reason: format!(
                "{} is removed, but the quorum gate did not pass {e}",
                m.describe()
            ),
            applied: true,
        })?;
        said.push(format!("gate: {gate}"));
        Ok(said.join("; "))
    }

    /// A membership step stopped: recorded `Failed`. After a removal the rollout stays
    /// interrupted for `resume`; before any, it ends with nothing changed.
    pub(super) fn membership_stopped(
        &mut self,
        j: &mut Journal,
        i: usize,
        stop: Stop,
    ) -> Result<Ended> {
        j.steps[i] = StepState::Failed;
        j.note(
            (self.now)(),
            format!("{}{}", failed_prefix(COMPONENT), stop.reason),
        );
        let prefix = format!("{COMPONENT}: {DONE}");
        let done: Vec<String> = j
            .log
            .iter()
            .filter_map(|e| e.message.strip_prefix(&prefix).map(str::to_string))
            .collect();
        let removed = stop.applied
            || j.plan.steps.iter().enumerate().any(|(k, s)| {
                s.kind == MEMBER_REMOVE
                    && matches!(j.steps[k], StepState::Swapped | StepState::Healthy)
            });
        // The file steps before it are done and healthy: the rollout stays interrupted, and
        // `resume` continues with this step (each checks what is already done).
        j.note(
            (self.now)(),
            format!(
                "{COMPONENT}: stopped {}; every file step is done",
                if removed {
                    "after a member was removed"
                } else {
                    "before any member was removed"
                }
            ),
        );
        self.save(j)?;
        let step = j
            .plan
            .etcd
            .as_ref()
            .and_then(|r| r.action(i))
            .map_or_else(|| format!("step {}", i + 1), |a| a.description.clone());
        Ok(Ended::Stopped {
            component: COMPONENT.into(),
            step,
            reason: stop.reason,
            done,
            resumable: true,
        })
    }
}

/// A rollback restores files only: says (an event each) which membership changes of the
/// recorded rollout stay.
pub(super) fn not_undone(ex: &mut Executor, j: &Journal) {
    let prefix = format!("{COMPONENT}: {DONE}");
    for what in j.log.iter().filter_map(|e| e.message.strip_prefix(&prefix)) {
        ex.event(
            COMPONENT,
            "not-undone",
            "ok",
            Stopwatch::start(),
            Some(format!(
                "{what} (a rollback restores files; etcd membership changes stay)"
            )),
        );
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read what the executor wrote with std::fs
mod tests {
    use crate::rollout::journal::Outcome;
    use std::cell::{Cell, RefCell};

    use super::*;
    use crate::rollout::exec::{Event, Prober, Restarter, Timing};
    use crate::rollout::plan::Gate;
    use crate::rollout::profile::Restart;

    fn member(n: u32) -> MemberRef {
        MemberRef {
            id: format!("{}", 0xac62_bb5f_8a7d_e630_u64 + n as u64),
            name: format!("etcd{n}"),
            client_urls: vec![format!("https://127.0.0.1{n}:2379")],
            peer_urls: vec![format!("https://127.0.0.1{n}:2380")],
            healthy: None,
        }
    }

    fn access() -> Access {
        Access {
            bootstrap: "https://127.0.0.11:2379".into(),
            ca: "/pki/ca.pem".into(),
            client: Some(Identity {
                cert: "/pki/client.pem".into(),
                key: "/pki/client-key.pem".into(),
            }),
            origin: "test".into(),
        }
    }

    /// A snapshot as etcd sends it: a (tiny) bbolt file and its SHA-256.
    fn fake_snapshot() -> Vec<u8> {
        let mut db = vec![0u8; 16384];
        db[16..20].copy_from_slice(&[0xED, 0xDA, 0x0C, 0xED]);
        db[100] = 7;
        let sum = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &db);
        db.extend_from_slice(sum.as_ref());
        db
    }

    /// Three members on 127.0.0.11-13; a removed member stops answering.
    struct Fake {
        members: RefCell<Vec<MemberRef>>,
        unhealthy: RefCell<Vec<String>>,
        leader: RefCell<String>,
        calls: RefCell<Vec<String>>,
        fail_snapshot: bool,
        /// After a removal, this member turns unhealthy.
        sick_after_remove: Cell<Option<u32>>,
        db_size: u64,
    }

    impl Fake {
        fn new(leader: u32) -> Fake {
            Fake {
                members: RefCell::new((1..=3).map(member).collect()),
                unhealthy: RefCell::new(vec![]),
                leader: RefCell::new(member(leader).id),
                calls: RefCell::new(vec![]),
                fail_snapshot: false,
                sick_after_remove: Cell::new(None),
                db_size: 20480,
            }
        }

        fn at(&self, ep: &str) -> std::result::Result<MemberRef, String> {
            self.members
                .borrow()
                .iter()
                .find(|m| m.endpoint() == Some(ep))
                .cloned()
                .ok_or_else(|| format!("cannot connect to {ep}: refused"))
        }

        fn called(&self, what: &str) -> usize {
            self.calls
                .borrow()
                .iter()
                .filter(|c| c.starts_with(what))
                .count()
        }
    }

    impl EtcdAdmin for Fake {
        fn members(&self, _: &Access, ep: &str) -> std::result::Result<Vec<MemberRef>, String> {
            self.at(ep)?;
            Ok(self.members.borrow().clone())
        }
        fn status(&self, _: &Access, ep: &str) -> std::result::Result<Status, String> {
            let m = self.at(ep)?;
            Ok(Status {
                member_id: m.id,
                leader: self.leader.borrow().clone(),
                revision: 42,
                db_size: self.db_size,
            })
        }
        fn healthy(&self, _: &Access, ep: &str) -> std::result::Result<bool, String> {
            let m = self.at(ep)?;
            Ok(!self.unhealthy.borrow().contains(&m.id))
        }
        fn snapshot(
            &self,
            _: &Access,
            ep: &str,
            _: Duration,
            limit: u64,
            out: &mut dyn FnMut(&[u8]) -> std::result::Result<(), String>,
        ) -> std::result::Result<(), String> {
            self.at(ep)?;
            self.calls.borrow_mut().push(format!("snapshot {ep}"));
            // The gateway's answer through the real decoder, in awkward pieces.
            let body = gateway_answer(&fake_snapshot(), 5000);
            let mut d = SnapshotDecoder::new(limit);
            for piece in body.as_bytes().chunks(777) {
                d.feed(piece, out)?;
                if self.fail_snapshot && d.messages() > 0 {
                    return Err("the stream failed after 1 message(s): boom".into());
                }
            }
            d.finish().map(|_| ())
        }
        fn move_leader(&self, _: &Access, ep: &str, to: &str) -> std::result::Result<(), String> {
            let m = self.at(ep)?;
            self.calls
                .borrow_mut()
                .push(format!("move-leader {ep} {to}"));
            if m.id != *self.leader.borrow() {
                return Err("etcdserver: not leader".into());
            }
            *self.leader.borrow_mut() = to.to_string();
            Ok(())
        }
        fn remove(&self, _: &Access, ep: &str, id: &str) -> std::result::Result<(), String> {
            self.at(ep)?;
            self.calls.borrow_mut().push(format!("remove {id}"));
            let before = self.members.borrow().len();
            self.members.borrow_mut().retain(|m| m.id != id);
            if self.members.borrow().len() == before {
                return Err("etcdserver: member not found".into());
            }
            if let Some(n) = self.sick_after_remove.get() {
                self.unhealthy.borrow_mut().push(member(n).id);
            }
            Ok(())
        }
    }

    fn empty_plan(dir: &Path) -> Plan {
        Plan {
            bundle: dir.join("bundle"),
            ca: "/pki/ca.pem".into(),
            profile: "none".into(),
            files: vec![],
            steps: vec![],
            etcd: None,
        }
    }

    fn planned(fake: &Fake, remove: &[&str], dir: &Path) -> (Plan, Vec<String>) {
        let mut p = empty_plan(dir);
        let remove: Vec<String> = remove.iter().map(|s| s.to_string()).collect();
        let mut problems = plan(
            &mut p,
            &remove,
            Ok(access()),
            &[],
            fake,
            &dir.join("state/snapshots"),
        );
        problems.extend(check(p.etcd.as_ref().unwrap()));
        (p, problems)
    }

    struct NoRestart;
    impl Restarter for NoRestart {
        fn restart(&self, _: &Restart) -> std::result::Result<(), String> {
            Err("no component restarts in these plans".into())
        }
    }
    struct NoProbe;
    impl Prober for NoProbe {
        fn check(&self, _: &Gate, _: Option<&str>) -> std::result::Result<(), String> {
            Err("no gate in these plans".into())
        }
    }

    fn run(
        fake: &Fake,
        state: &Path,
        f: impl FnOnce(&mut Executor) -> Result<Ended>,
    ) -> (Ended, Vec<Event>) {
        let mut events = Vec::new();
        let mut sink = |e: &Event| events.push(e.clone());
        let mut ex = Executor {
            state_dir: state.to_path_buf(),
            restarter: &NoRestart,
            prober: &NoProbe,
            timing: Timing {
                deadline: Duration::from_millis(60),
                interval: Duration::from_millis(10),
            },
            now: &|| 1_800_000_000,
            on_event: &mut sink,
            fault: &|_| Ok(()),
            etcd: fake,
        };
        let ended = f(&mut ex).unwrap();
        (ended, events)
    }

    #[test]
    fn names_and_addresses_resolve_and_every_step_has_its_etcdctl_line() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(3);
        for who in ["etcd3", "127.0.0.13"] {
            let (p, problems) = planned(&fake, &[who], dir.path());
            assert!(problems.is_empty(), "{who}: {problems:?}");
            let r = p.etcd.as_ref().unwrap();
            assert_eq!(r.retired(), vec![&r.members[2]]);
            let kinds: Vec<&str> = p.steps.iter().map(|s| s.kind.as_str()).collect();
            assert_eq!(kinds, [SNAPSHOT, MOVE_LEADER, MEMBER_REMOVE]);
            assert_eq!(
                r.endpoints,
                ["https://127.0.0.11:2379", "https://127.0.0.12:2379"]
            );
            let tls = "--cacert=/pki/ca.pem --cert=/pki/client.pem --key=/pki/client-key.pem";
            let m = |i: usize| r.actions[i].manual.clone();
            assert!(
                m(0).starts_with(&format!("ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.11:2379 {tls} snapshot save "))
                    && m(0).contains("/state/snapshots/"),
                "{}",
                m(0)
            );
            assert_eq!(
                m(1),
                format!("ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.13:2379 {tls} move-leader {}   # acts only if one of these retired members leads", member(1).hex())
            );
            assert_eq!(
                m(2),
                format!("ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.11:2379,https://127.0.0.12:2379 {tls} member remove {}", member(3).hex())
            );
            assert!(
                r.actions[1].description.contains("now etcd3"),
                "{:?}",
                r.actions[1]
            );
            let text = p.render();
            assert!(
                text.contains(". etcd-membership: snapshot the keyspace"),
                "{text}"
            );
            assert!(text.contains(&format!("by hand: {}", m(2))), "{text}");
            // The plan survives the journal.
            let back: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
            assert_eq!(back, p);
        }
        // Plans with no retirement are written as before.
        let v = serde_json::to_value(empty_plan(dir.path())).unwrap();
        assert!(v.get("etcd").is_none());
    }

    #[test]
    fn retirements_that_cannot_pass_are_refused_one_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(1);
        let refused = |remove: &[&str], fake: &Fake| planned(fake, remove, dir.path()).1;
        let p = refused(&[], &fake);
        assert!(p.len() == 1 && p[0].contains("names no member"), "{p:?}");
        let p = refused(&["etcd9"], &fake);
        assert!(
            p.len() == 1
                && p[0].contains("`etcd9` is not a member")
                && p[0].contains("etcd3 (127.0.0.13)"),
            "{p:?}"
        );
        let p = refused(&["etcd1", "etcd2", "127.0.0.13"], &fake);
        assert!(
            p.len() == 1 && p[0].contains("would leave no etcd member"),
            "{p:?}"
        );
        // Two of three, one at a time, all healthy: quorum all along.
        assert_eq!(refused(&["etcd2", "etcd3"], &fake), Vec::<String>::new());
        // A kept member down: removing etcd3 would leave etcd1 and etcd2, one healthy.
        fake.unhealthy.borrow_mut().push(member(2).id);
        let p = refused(&["etcd3"], &fake);
        assert!(
            p.len() == 2
                && p[0].contains("removing etcd3 would lose quorum: etcd1, etcd2 would be left, only 1 of them healthy (etcd2 not)")
                && p[1].contains("kept member etcd2"),
            "{p:?}"
        );
        // Two members down: no quorum to commit anything.
        fake.unhealthy.borrow_mut().push(member(3).id);
        let p = refused(&["etcd3"], &fake);
        assert!(
            p.iter()
                .any(|l| l.contains("no quorum to commit the removal of etcd3")),
            "{p:?}"
        );
        // A keyspace far larger than one gateway answer (1 MiB) of old: streamed, not refused.
        let mut big = Fake::new(1);
        big.db_size = 64 << 20;
        assert_eq!(refused(&["etcd3"], &big), Vec::<String>::new());
    }

    #[test]
    fn without_the_live_cluster_the_node_s_initial_cluster_still_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let node = vec![NodeComponent {
            kind: "etcd".into(),
            runs: crate::node::Runs::Systemd("etcd".into()),
            source: "/etc/systemd/system/etcd.service".into(),
            settings: vec![crate::node::Setting {
                name: "initial-cluster".into(),
                value: "etcd1=https://127.0.0.11:2380,etcd2=https://127.0.0.12:2380,etcd3=https://127.0.0.13:2380".into(),
                from: "etcd.service ExecStart".into(),
            }],
            files: vec![],
            probes: vec![],
            unit_files: vec![],
        }];
        let mut p = empty_plan(dir.path());
        let problems = plan(
            &mut p,
            &["etcd2".into(), "127.0.0.13".into()],
            Ok(access()),
            &node,
            &NoEtcd,
            dir.path(),
        );
        assert!(
            problems.len() == 1
                && problems[0].contains("cannot read the member list from https://127.0.0.11:2379"),
            "{problems:?}"
        );
        let r = p.etcd.as_ref().unwrap();
        assert!(!r.live && r.members.len() == 3);
        // Names are still judged against the members the node names.
        assert_eq!(check(r), Vec::<String>::new());
        let mut unknown = r.clone();
        unknown.remove = vec!["etcd9".into()];
        assert!(
            check(&unknown)[0].contains(
                "`etcd9` is not a member of the etcd cluster (members the node's --initial-cluster"
            ),
            "{:?}",
            check(&unknown)
        );
        // The printed ids say they are unknown rather than guess.
        assert!(
            r.actions[3].manual.ends_with("member remove <id of etcd3>"),
            "{:?}",
            r.actions
        );
    }

    #[test]
    fn a_leading_retired_member_hands_over_then_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(3);
        let (p, problems) = planned(&fake, &["etcd3"], dir.path());
        assert!(problems.is_empty(), "{problems:?}");
        let state = dir.path().join("state");
        let (ended, events) = run(&fake, &state, |ex| ex.apply(&p));
        assert_eq!(ended, Ended::Done, "{events:?}");
        assert_eq!(*fake.leader.borrow(), member(1).id);
        assert_eq!(
            *fake.calls.borrow(),
            [
                "snapshot https://127.0.0.11:2379".to_string(),
                format!("move-leader https://127.0.0.13:2379 {}", member(1).id),
                format!("remove {}", member(3).id),
            ]
        );
        let snaps: Vec<_> = std::fs::read_dir(state.join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(snaps.len(), 1);
        assert_eq!(std::fs::read(&snaps[0]).unwrap(), fake_snapshot());
        let j = Journal::load(&state).unwrap().unwrap();
        assert_eq!(j.outcome, Outcome::Done);
        assert!(j.steps.iter().all(|s| *s == StepState::Healthy));
        let notes: Vec<&str> = j.log.iter().map(|e| e.message.as_str()).collect();
        let done: Vec<&&str> = notes.iter().filter(|n| n.contains(": done: ")).collect();
        assert_eq!(done.len(), 3, "{notes:?}");
        assert!(done[0].contains("16416 bytes, revision 42"), "{done:?}");
        assert!(done[1].contains("leadership moved from etcd3"), "{done:?}");
        assert!(done[2].contains(&format!("member {} removed", member(3).describe())));
    }

    #[test]
    fn two_of_three_go_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(2);
        let (p, problems) = planned(&fake, &["etcd3", "etcd2"], dir.path());
        assert!(problems.is_empty(), "{problems:?}");
        let (ended, events) = run(&fake, &dir.path().join("state"), |ex| ex.apply(&p));
        assert_eq!(ended, Ended::Done, "{events:?}");
        assert_eq!(*fake.members.borrow(), vec![member(1)]);
        assert_eq!(*fake.leader.borrow(), member(1).id);
        assert_eq!(fake.called("remove"), 2);
    }

    #[test]
    fn a_failure_before_any_removal_removes_nothing_and_stays_resumable() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = Fake::new(3);
        let (p, _) = planned(&fake, &["etcd3"], dir.path());
        fake.fail_snapshot = true;
        let state = dir.path().join("state");
        let (ended, _) = run(&fake, &state, |ex| ex.apply(&p));
        match ended {
            Ended::Stopped {
                resumable,
                reason,
                done,
                ..
            } => {
                assert!(resumable && done.is_empty(), "{reason}");
                assert!(reason.contains("boom"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fake.called("move-leader") + fake.called("remove"), 0);
        assert_eq!(fake.members.borrow().len(), 3);
        // The part written is gone with its temp file.
        let left: Vec<_> = std::fs::read_dir(state.join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let j = Journal::load(&state).unwrap().unwrap();
        // The file steps are done: the rollout stays interrupted, `resume` goes on from here.
        assert_eq!(j.outcome, Outcome::Running);
        // Also when a kept member is unhealthy once the removal is due: nothing is removed.
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(1);
        let (p, _) = planned(&fake, &["etcd3"], dir.path());
        fake.unhealthy.borrow_mut().push(member(2).id);
        let (ended, _) = run(&fake, &dir.path().join("state"), |ex| ex.apply(&p));
        assert!(
            matches!(&ended, Ended::Stopped { resumable: true, reason, done, .. }
                if reason.contains("kept member not healthy") && done.len() == 1),
            "{ended:?}"
        );
        assert_eq!(fake.called("remove"), 0);
    }

    #[test]
    fn a_failure_after_a_removal_stops_and_resume_continues_without_removing_again() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(1);
        let (p, _) = planned(&fake, &["etcd3"], dir.path());
        fake.sick_after_remove.set(Some(2));
        let state = dir.path().join("state");
        let (ended, _) = run(&fake, &state, |ex| ex.apply(&p));
        match &ended {
            Ended::Stopped {
                resumable,
                reason,
                done,
                step,
                ..
            } => {
                assert!(*resumable, "{ended:?}");
                assert!(
                    reason.contains("removed, but the quorum gate did not pass")
                        && reason.contains("etcd2"),
                    "{reason}"
                );
                assert!(step.starts_with("member remove etcd3"), "{step}");
                assert_eq!(done.len(), 2, "{done:?}");
                assert!(done[1].contains("removed"), "{done:?}");
            }
            other => panic!("{other:?}"),
        }
        let j = Journal::load(&state).unwrap().unwrap();
        assert_eq!(j.outcome, Outcome::Running);
        assert_eq!(j.steps[2], StepState::Failed);
        // etcd2 recovers; resume re-checks the removal and passes its gate.
        fake.unhealthy.borrow_mut().clear();
        fake.sick_after_remove.set(None);
        let (ended, _) = run(&fake, &state, |ex| ex.resume());
        assert_eq!(ended, Ended::Done);
        assert_eq!(fake.called("remove"), 1, "{:?}", fake.calls.borrow());
        assert_eq!(fake.called("snapshot"), 1);
        let j = Journal::load(&state).unwrap().unwrap();
        assert_eq!(j.outcome, Outcome::Done);
        // A rollback afterwards says what it cannot undo.
        let (_, events) = run(&fake, &state, |ex| ex.rollback(None));
        let kept: Vec<_> = events.iter().filter(|e| e.action == "not-undone").collect();
        assert_eq!(kept.len(), 2, "{events:?}");
    }

    /// The gateway's answer for `snap`: as etcd sends it, `per` bytes of database per message
    /// with the bytes still to come, then the SHA-256 alone (zero remaining_bytes left out).
    fn gateway_answer(snap: &[u8], per: usize) -> String {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let (db, sum) = snap.split_at(snap.len() - 32);
        let mut out = String::new();
        let mut sent = 0;
        for piece in db.chunks(per) {
            sent += piece.len();
            out.push_str(&format!(
                "{{\"result\":{{\"blob\":\"{}\",\"remaining_bytes\":\"{}\"}}}}\n",
                b64(piece),
                db.len() - sent
            ));
        }
        out.push_str(&format!("{{\"result\":{{\"blob\":\"{}\"}}}}\n", b64(sum)));
        out
    }

    /// Decodes `body` fed in the pieces `cuts` makes (offsets), checked as it goes.
    fn decode_in_pieces(
        body: &[u8],
        cuts: &[usize],
        limit: u64,
    ) -> std::result::Result<(Vec<u8>, u64), String> {
        let mut got = Vec::new();
        let mut sum = SnapshotSum::new();
        let mut d = SnapshotDecoder::new(limit);
        let mut at = 0;
        for &cut in cuts.iter().chain([body.len()].iter()) {
            let cut = cut.clamp(at, body.len());
            d.feed(&body[at..cut], &mut |b| {
                got.extend_from_slice(b);
                sum.push(b);
                Ok(())
            })?;
            at = cut;
        }
        d.finish()?;
        let db = sum.finish()?;
        Ok((got, db))
    }

    #[test]
    fn the_gateway_stream_decodes_the_same_however_it_is_split() {
        let snap = fake_snapshot();
        let body = gateway_answer(&snap, 5000);
        let bytes = body.as_bytes();
        let whole = decode_in_pieces(bytes, &[], u64::MAX).unwrap();
        assert_eq!(whole, (snap.clone(), 16384));
        // Where the awkward places are: inside `"blob":"`, inside a base64 quantum of a blob
        // (offset not a multiple of 4 from its start), on the padding, on the newline between
        // two objects, between `}` and `}`.
        let blob = body.find("\"blob\":\"").unwrap() + 8;
        let second = body[1..].find('{').unwrap() + 1;
        let second = body[second..].find("\n{").unwrap() + second;
        let pad = body.find("=\"").unwrap();
        let braces = body.find("}}").unwrap() + 1;
        let awkward = [
            vec![3],
            vec![blob - 2, blob + 1, blob + 2, blob + 3],
            vec![blob + 5, blob + 6, blob + 4097],
            vec![pad, pad + 1],
            vec![second, second + 1],
            vec![braces],
            (0..bytes.len()).step_by(7).collect(),
            (0..bytes.len()).collect(),
        ];
        for cuts in &awkward {
            let got = decode_in_pieces(bytes, cuts, u64::MAX);
            assert_eq!(
                got.as_ref().map(|g| g.1),
                Ok(16384),
                "cut at {:?}",
                &cuts[..cuts.len().min(8)]
            );
            assert_eq!(got.unwrap().0, snap);
        }
        // Objects back to back, or with other whitespace, are the same stream.
        let packed = body.replace('\n', "");
        assert_eq!(
            decode_in_pieces(packed.as_bytes(), &[100, 101], u64::MAX)
                .unwrap()
                .0,
            snap
        );
        let spaced = body.replace('\n', "\r\n \t");
        assert_eq!(
            decode_in_pieces(spaced.as_bytes(), &[9999], u64::MAX)
                .unwrap()
                .0,
            snap
        );
        // Braces and escaped quotes inside strings do not end an object.
        let odd = format!(
            "{{\"result\":{{\"note\":\"}}\\\"{{\",\"blob\":\"\"}}}}{}",
            body
        );
        assert_eq!(
            decode_in_pieces(odd.as_bytes(), &[12, 13], u64::MAX)
                .unwrap()
                .0,
            snap
        );
    }

    #[test]
    fn the_gateway_stream_and_the_snapshot_are_checked() {
        let snap = fake_snapshot();
        let body = gateway_answer(&snap, 32 * 1024);
        let (got, db) = decode_in_pieces(body.as_bytes(), &[], u64::MAX).unwrap();
        assert_eq!((got.as_slice(), db), (snap.as_slice(), 16384));
        assert_eq!(verify_snapshot(&snap), Ok(16384));
        let first = body.lines().next().unwrap();
        let failed = format!(
            "{first}\n{{\"error\":{{\"grpc_code\":14,\"message\":\"transport is closing\"}}}}\n"
        );
        let err = decode_in_pieces(failed.as_bytes(), &[first.len() + 3], u64::MAX).unwrap_err();
        assert!(
            err.contains("after 1 message(s): transport is closing"),
            "{err}"
        );
        assert!(decode_in_pieces(b"", &[], u64::MAX)
            .unwrap_err()
            .contains("no snapshot message"));
        let cut = decode_in_pieces(&body.as_bytes()[..body.len() - 10], &[], u64::MAX).unwrap_err();
        assert!(cut.contains("ends inside message 2"), "{cut}");
        let err = decode_in_pieces(b"HTTP/1.1 200", &[], u64::MAX).unwrap_err();
        assert!(err.contains("where a JSON object should start"), "{err}");
        let bad = body.replacen("\"blob\":\"", "\"blob\":\"*", 1);
        assert!(decode_in_pieces(bad.as_bytes(), &[], u64::MAX)
            .unwrap_err()
            .contains("message 1 has a blob that is not base64"));
        // Without the last message, the last 32 bytes of the database pass for the sum.
        let short = body.lines().take(1).collect::<String>();
        assert!(decode_in_pieces(short.as_bytes(), &[], u64::MAX)
            .unwrap_err()
            .contains("damaged"));
        let mut damaged = snap.clone();
        damaged[100] = 8;
        assert!(verify_snapshot(&damaged).unwrap_err().contains("damaged"));
        let mut not_bolt = snap.clone();
        not_bolt[16] = 0;
        assert!(verify_snapshot(&not_bolt).unwrap_err().contains("bbolt"));
        assert!(verify_snapshot(&snap[..40])
            .unwrap_err()
            .contains("too short"));
        // The limit: refused as soon as etcd announces more (the first of four messages here).
        let four = gateway_answer(&snap, 5000);
        let mut seen = 0;
        let mut d = SnapshotDecoder::new(10_000);
        let err = d
            .feed(four.as_bytes(), &mut |b| {
                seen += b.len();
                Ok(())
            })
            .unwrap_err();
        assert!(
            err.contains("larger than the 10000 bytes") && err.contains("16384 bytes announced"),
            "{err}"
        );
        assert_eq!(seen, 0, "nothing handed on once refused");
        // Without remaining_bytes, once the bytes pass it.
        let quiet = gateway_answer(&snap, 5000).replace(",\"remaining_bytes\":", ",\"x\":");
        let err = decode_in_pieces(quiet.as_bytes(), &[], 10_000).unwrap_err();
        assert!(err.contains("larger than the 10000 bytes"), "{err}");
        // One message may not grow without bound.
        let endless = format!("{{\"result\":{{\"blob\":\"{}", "A".repeat(MAX_MESSAGE));
        let err = decode_in_pieces(endless.as_bytes(), &[1000], u64::MAX).unwrap_err();
        assert!(err.contains("longer than"), "{err}");
        // The sink's failure stops the stream.
        let mut d = SnapshotDecoder::new(u64::MAX);
        let err = d
            .feed(body.as_bytes(), &mut |_| Err("disk full".into()))
            .unwrap_err();
        assert_eq!(err, "disk full");
    }

    #[test]
    fn a_keyspace_larger_than_the_room_for_its_snapshot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(1);
        let (p, problems) = planned(&fake, &["etcd3"], dir.path());
        assert!(problems.is_empty(), "{problems:?}");
        let mut r = p.etcd.clone().unwrap();
        assert!(r.snapshot_room.is_some_and(|room| room > 20480), "{r:?}");
        // Far more than one gateway answer of old (1 MiB) is fine while it fits.
        r.db_size = Some(64 << 20);
        r.snapshot_room = Some(1 << 30);
        assert_eq!(check(&r), Vec::<String>::new());
        r.snapshot_room = Some(32 << 20);
        let p = check(&r);
        assert!(
            p.len() == 1
                && p[0].contains("the keyspace is 67108864 bytes")
                && p[0].contains("33554432 bytes free for")
                && p[0].contains("state/snapshots"),
            "{p:?}"
        );
    }
}
