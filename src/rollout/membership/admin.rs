//! The etcd requests the membership steps make, and their one real implementation over the
//! v3 JSON gateway.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::stream::{max_stream, SnapshotDecoder};
use super::{Access, MemberRef};
use crate::endpoint::Target;
use crate::preflight::etcd::{EtcdApi, Gateway};
use crate::rollout::Error;
use crate::sys::tls::{self, ProbeOptions};
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
    ) -> std::result::Result<Vec<MemberRef>, Error>;
    fn status(&self, access: &Access, endpoint: &str) -> std::result::Result<Status, Error>;
    fn healthy(&self, access: &Access, endpoint: &str) -> std::result::Result<bool, Error>;
    /// Streams the snapshot as etcdctl saves it (the database, then etcd's SHA-256 of it) into
    /// `out` as it arrives: each read waits at most `idle`, and a snapshot of more than `limit`
    /// bytes fails (as soon as etcd announces it, when it does).
    fn snapshot(
        &self,
        access: &Access,
        endpoint: &str,
        idle: Duration,
        limit: u64,
        out: &mut dyn FnMut(&[u8]) -> std::result::Result<(), Error>,
    ) -> std::result::Result<(), Error>;
    /// Asks the leader (at `leader`) to hand leadership to member `to` (decimal id).
    fn move_leader(
        &self,
        access: &Access,
        leader: &str,
        to: &str,
    ) -> std::result::Result<(), Error>;
    fn remove(&self, access: &Access, endpoint: &str, id: &str) -> std::result::Result<(), Error>;
}

/// For runs whose plan has no membership steps.
pub struct NoEtcd;

impl EtcdAdmin for NoEtcd {
    fn members(&self, _: &Access, _: &str) -> std::result::Result<Vec<MemberRef>, Error> {
        Err(Error::NoEtcdAccess)
    }
    fn status(&self, _: &Access, _: &str) -> std::result::Result<Status, Error> {
        Err(Error::NoEtcdAccess)
    }
    fn healthy(&self, _: &Access, _: &str) -> std::result::Result<bool, Error> {
        Err(Error::NoEtcdAccess)
    }
    fn snapshot(
        &self,
        _: &Access,
        _: &str,
        _: Duration,
        _: u64,
        _: &mut dyn FnMut(&[u8]) -> std::result::Result<(), Error>,
    ) -> std::result::Result<(), Error> {
        Err(Error::NoEtcdAccess)
    }
    fn move_leader(&self, _: &Access, _: &str, _: &str) -> std::result::Result<(), Error> {
        Err(Error::NoEtcdAccess)
    }
    fn remove(&self, _: &Access, _: &str, _: &str) -> std::result::Result<(), Error> {
        Err(Error::NoEtcdAccess)
    }
}

/// The v3 JSON gateway over [`crate::sys::tls`]; member list and health through preflight's
/// [`Gateway`].
pub struct GatewayAdmin {
    /// Bound on one request.
    pub timeout: Duration,
}

impl GatewayAdmin {
    fn opts(&self, a: &Access, timeout: Duration) -> std::result::Result<ProbeOptions, Error> {
        let read = |p: &Path| crate::sys::fs::read_file(p).map_err(Error::sys);
        let roots = tls::certs_from_pem(&read(&a.ca)?).map_err(Error::pem(&a.ca))?;
        let client_identity = match &a.client {
            Some(id) => Some((
                tls::certs_from_pem(&read(&id.cert)?).map_err(Error::pem(&id.cert))?,
                tls::key_from_pem(&read(&id.key)?).map_err(Error::pem(&id.key))?,
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
    ) -> std::result::Result<Vec<u8>, Error> {
        let target: Target = endpoint.parse()?;
        let opts = self.opts(a, timeout)?;
        let resp = tls::https_request(
            &target,
            "POST",
            path,
            Some(body.to_string().as_bytes()),
            &opts,
        )?;
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
    ) -> std::result::Result<Value, Error> {
        let bytes = self.request(a, endpoint, path, body, self.timeout)?;
        serde_json::from_slice(&bytes).map_err(|source| Error::NotJson {
            endpoint: endpoint.into(),
            path: path.into(),
            source,
        })
    }
}

/// `{"error": "etcdserver: not leader", "message": …, "code": 9}` in a few words.
fn gateway_error(endpoint: &str, path: &str, status: u16, body: &[u8]) -> Error {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let said = v["message"]
        .as_str()
        .or(v["error"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    Error::Gateway {
        endpoint: endpoint.into(),
        path: path.into(),
        status,
        said,
    }
}

pub(super) fn uint(v: &Value) -> u64 {
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
    fn members(&self, a: &Access, endpoint: &str) -> std::result::Result<Vec<MemberRef>, Error> {
        let target: Target = endpoint.parse()?;
        let gw = Gateway {
            opts: self.opts(a, self.timeout)?,
        };
        Ok(gw
            .members(&target)
            .map_err(|e| Error::EtcdSaid(e.to_string()))?
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

    fn status(&self, a: &Access, endpoint: &str) -> std::result::Result<Status, Error> {
        let v = self.post(a, endpoint, "/v3/maintenance/status", &json!({}))?;
        Ok(Status {
            member_id: text(&v["header"]["member_id"]),
            leader: text(&v["leader"]),
            revision: uint(&v["header"]["revision"]),
            db_size: uint(&v["dbSize"]),
        })
    }

    fn healthy(&self, a: &Access, endpoint: &str) -> std::result::Result<bool, Error> {
        let target: Target = endpoint.parse()?;
        Gateway {
            opts: self.opts(a, self.timeout)?,
        }
        .healthy(&target)
        .map_err(|e| Error::EtcdSaid(e.to_string()))
    }

    fn snapshot(
        &self,
        a: &Access,
        endpoint: &str,
        idle: Duration,
        limit: u64,
        out: &mut dyn FnMut(&[u8]) -> std::result::Result<(), Error>,
    ) -> std::result::Result<(), Error> {
        const PATH: &str = "/v3/maintenance/snapshot";
        let target: Target = endpoint.parse()?;
        // Connecting and the answer's head within the request timeout (or `idle`, if longer);
        // then the body by progress.
        let opts = self.opts(a, self.timeout.max(idle))?;
        let limits = tls::StreamLimits {
            idle,
            max_body: max_stream(limit),
        };
        let mut resp = tls::https_stream(&target, "POST", PATH, Some(b"{}"), &opts, limits)?;
        if resp.status != 200 {
            let mut said = Vec::new();
            let _ = (&mut resp.body).take(64 * 1024).read_to_end(&mut said);
            return Err(gateway_error(endpoint, PATH, resp.status, &said));
        }
        let mut decoder = SnapshotDecoder::new(limit);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = resp
                .body
                .read(&mut buf)
                .map_err(|source| Error::StreamRead {
                    endpoint: endpoint.into(),
                    path: PATH.into(),
                    messages: decoder.messages(),
                    bytes: decoder.decoded(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            decoder
                .feed(&buf[..n], out)
                .map_err(|e| e.context(format!("{endpoint}{PATH}")))?;
        }
        decoder
            .finish()
            .map(|_| ())
            .map_err(|e| e.context(format!("{endpoint}{PATH}")))
    }

    fn move_leader(&self, a: &Access, leader: &str, to: &str) -> std::result::Result<(), Error> {
        self.post(
            a,
            leader,
            "/v3/maintenance/transfer-leadership",
            &json!({ "targetID": to }),
        )
        .map(|_| ())
    }

    fn remove(&self, a: &Access, endpoint: &str, id: &str) -> std::result::Result<(), Error> {
        self.post(
            a,
            endpoint,
            "/v3/cluster/member/remove",
            &json!({ "ID": id }),
        )
        .map(|_| ())
    }
}
