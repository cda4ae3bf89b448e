//! Live etcd checks over the v3 JSON gateway with a client certificate: membership, health,
//! leader, and what retiring members would leave.

use serde::Deserialize;

use super::{Check, Error};
use crate::endpoint::{url_host, Target};
use crate::sys::tls::{self, ProbeOptions};

#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    /// uint64 as a decimal string in the gateway's JSON.
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "peerURLs", default)]
    pub peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", default)]
    pub client_urls: Vec<String>,
}

impl Member {
    /// The id as etcdctl prints it.
    pub fn hex_id(&self) -> String {
        self.id
            .parse::<u64>()
            .map(|v| format!("{v:x}"))
            .unwrap_or_else(|_| self.id.clone())
    }

    /// Whether `who` (a name or an address) designates this member.
    pub fn is(&self, who: &str) -> bool {
        self.name == who
            || self
                .peer_urls
                .iter()
                .chain(&self.client_urls)
                .any(|u| url_host(u).is_some_and(|h| h == who))
    }
}

/// What a live etcd answers. One real implementation ([`Gateway`]); tests use a real cluster.
pub trait EtcdApi {
    fn members(&self, endpoint: &Target) -> Result<Vec<Member>, Error>;
    /// (this member's id, the leader's id)
    fn status(&self, endpoint: &Target) -> Result<(String, String), Error>;
    fn healthy(&self, endpoint: &Target) -> Result<bool, Error>;
}

pub struct Gateway {
    pub opts: ProbeOptions,
}

impl Gateway {
    fn post(&self, endpoint: &Target, path: &str) -> Result<serde_json::Value, Error> {
        let resp = tls::https_request(endpoint, "POST", path, Some(b"{}"), &self.opts)?;
        if resp.status != 200 {
            return Err(Error::Status {
                endpoint: endpoint.clone(),
                path: path.to_string(),
                status: resp.status,
            });
        }
        serde_json::from_slice(&resp.body).map_err(|e| Error::NotJson {
            endpoint: endpoint.clone(),
            path: path.to_string(),
            detail: e.to_string(),
        })
    }
}

impl EtcdApi for Gateway {
    fn members(&self, endpoint: &Target) -> Result<Vec<Member>, Error> {
        let v = self.post(endpoint, "/v3/cluster/member/list")?;
        serde_json::from_value(v["members"].clone()).map_err(|e| Error::MemberList {
            endpoint: endpoint.clone(),
            detail: e.to_string(),
        })
    }

    fn status(&self, endpoint: &Target) -> Result<(String, String), Error> {
        let v = self.post(endpoint, "/v3/maintenance/status")?;
        let s = |x: &serde_json::Value| {
            x.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| x.to_string())
        };
        Ok((s(&v["header"]["member_id"]), s(&v["leader"])))
    }

    fn healthy(&self, endpoint: &Target) -> Result<bool, Error> {
        let resp = tls::https_get(endpoint, "/health", &self.opts)?;
        let body = String::from_utf8_lossy(&resp.body).replace(' ', "");
        Ok(resp.status == 200 && body.contains("\"health\":\"true\""))
    }
}

/// Membership, health, quorum after retirement and the leader.
pub fn checks(api: &dyn EtcdApi, endpoints: &[Target], retire: &[String]) -> Vec<Check> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut members = None;
    for ep in endpoints {
        match api.members(ep) {
            Ok(m) => {
                members = Some(m);
                break;
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let Some(members) = members else {
        out.push(Check::warn(
            "etcd-reachable",
            format!("no etcd endpoint answered: {}", errors.join("; ")),
            None,
        ));
        return out;
    };
    let describe = |m: &Member| format!("{} ({}, {})", m.name, m.hex_id(), m.client_urls.join(","));
    out.push(Check::pass(
        "etcd-members",
        format!(
            "{} members: {}",
            members.len(),
            members.iter().map(describe).collect::<Vec<_>>().join("; ")
        ),
    ));

    let mut unhealthy = Vec::new();
    let mut leader = None;
    for m in &members {
        let Some(url) = m.client_urls.first() else {
            unhealthy.push(format!("{} has no client URL (not started?)", m.name));
            continue;
        };
        let target: Target = match url.parse() {
            Ok(t) => t,
            Err(e) => {
                unhealthy.push(format!("{}: {e}", m.name));
                continue;
            }
        };
        match api.healthy(&target) {
            Ok(true) => {}
            Ok(false) => unhealthy.push(format!("{} at {url} reports unhealthy", m.name)),
            Err(e) => unhealthy.push(format!("{} at {url}: {e}", m.name)),
        }
        if leader.is_none() {
            if let Ok((_, l)) = api.status(&target) {
                leader = Some(l);
            }
        }
    }
    out.push(if unhealthy.is_empty() {
        Check::pass("etcd-health", format!("all {} members healthy", members.len()))
    } else {
        Check::fail(
            "etcd-health",
            format!("{} of {} members unhealthy: {}", unhealthy.len(), members.len(), unhealthy.join("; ")),
            Some("bring every member back before changing membership: a removal with a member down can cost quorum".into()),
        )
    });

    let retired: Vec<&Member> = members
        .iter()
        .filter(|m| retire.iter().any(|r| m.is(r)))
        .collect();
    for m in &retired {
        out.push(Check::warn(
            "etcd-retired-member",
            format!("retired node {} is still an etcd member", describe(m)),
            Some(format!(
                "etcdctl member remove {}   # one member at a time, then check health",
                m.hex_id()
            )),
        ));
    }
    let after = members.len() - retired.len();
    out.push(match after {
        0 => Check::fail(
            "etcd-quorum-after",
            format!(
                "retiring {} of {} members leaves no etcd member",
                retired.len(),
                members.len()
            ),
            Some("keep at least one member; add the new ones before removing the old".into()),
        ),
        n if n % 2 == 0 => Check::warn(
            "etcd-quorum-after",
            format!(
                "{n} members after retirement: an even count tolerates no more failures than {}",
                n - 1
            ),
            Some("prefer an odd member count (3 or 5)".into()),
        ),
        n => Check::pass(
            "etcd-quorum-after",
            format!("{n} members after retirement (quorum {})", n / 2 + 1),
        ),
    });
    if retired.len() * 2 >= members.len() && !retired.is_empty() {
        out.push(Check::warn(
            "etcd-quorum-during",
            format!(
                "retiring {} of {} members: removing them at once breaks quorum",
                retired.len(),
                members.len()
            ),
            Some("remove one member at a time and wait for health between removals".into()),
        ));
    }
    if let Some(leader_id) = leader {
        match members.iter().find(|m| m.id == leader_id) {
            Some(l) if retired.iter().any(|r| r.id == l.id) => out.push(Check::warn(
                "etcd-leader",
                format!("the leader {} is to be retired", describe(l)),
                Some(format!(
                    "take a snapshot (etcdctl snapshot save backup.db), then move leadership first: etcdctl move-leader <id of a kept member>   # leader now {}",
                    l.hex_id()
                )),
            )),
            Some(l) => out.push(Check::pass("etcd-leader", format!("leader {} is kept", describe(l)))),
            None => out.push(Check::warn("etcd-leader", format!("leader id {leader_id} is not in the member list"), None)),
        }
    }
    out
}
