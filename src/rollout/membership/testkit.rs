//! Test fixtures of the membership steps: a fake three-member cluster on 127.0.0.11-13 and an
//! executor that runs membership steps only.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::error::Result;
use crate::rollout::exec::{Ended, Event, Executor, Prober, Restarter, Timing};
use crate::rollout::plan::{Gate, Identity, Plan};
use crate::rollout::profile::Restart;
use crate::rollout::Error;

pub(super) fn member(n: u32) -> MemberRef {
    MemberRef {
        id: format!("{}", 0xac62_bb5f_8a7d_e630_u64 + n as u64),
        name: format!("etcd{n}"),
        client_urls: vec![format!("https://127.0.0.1{n}:2379")],
        peer_urls: vec![format!("https://127.0.0.1{n}:2380")],
        healthy: None,
    }
}

pub(super) fn access() -> Access {
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
pub(super) fn fake_snapshot() -> Vec<u8> {
    let mut db = vec![0u8; 16384];
    db[16..20].copy_from_slice(&[0xED, 0xDA, 0x0C, 0xED]);
    db[100] = 7;
    let sum = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &db);
    db.extend_from_slice(sum.as_ref());
    db
}

/// Three members on 127.0.0.11-13; a removed member stops answering.
pub(super) struct Fake {
    pub(super) members: RefCell<Vec<MemberRef>>,
    pub(super) unhealthy: RefCell<Vec<String>>,
    pub(super) leader: RefCell<String>,
    pub(super) calls: RefCell<Vec<String>>,
    pub(super) fail_snapshot: bool,
    /// After a removal, this member turns unhealthy.
    pub(super) sick_after_remove: Cell<Option<u32>>,
    pub(super) db_size: u64,
}

impl Fake {
    pub(super) fn new(leader: u32) -> Fake {
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

    pub(super) fn at(&self, ep: &str) -> std::result::Result<MemberRef, Error> {
        self.members
            .borrow()
            .iter()
            .find(|m| m.endpoint() == Some(ep))
            .cloned()
            .ok_or_else(|| Error::Fault(format!("cannot connect to {ep}: refused")))
    }

    pub(super) fn called(&self, what: &str) -> usize {
        self.calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with(what))
            .count()
    }
}

impl EtcdAdmin for Fake {
    fn members(&self, _: &Access, ep: &str) -> std::result::Result<Vec<MemberRef>, Error> {
        self.at(ep)?;
        Ok(self.members.borrow().clone())
    }
    fn status(&self, _: &Access, ep: &str) -> std::result::Result<Status, Error> {
        let m = self.at(ep)?;
        Ok(Status {
            member_id: m.id,
            leader: self.leader.borrow().clone(),
            revision: 42,
            db_size: self.db_size,
        })
    }
    fn healthy(&self, _: &Access, ep: &str) -> std::result::Result<bool, Error> {
        let m = self.at(ep)?;
        Ok(!self.unhealthy.borrow().contains(&m.id))
    }
    fn snapshot(
        &self,
        _: &Access,
        ep: &str,
        _: Duration,
        limit: u64,
        out: &mut dyn FnMut(&[u8]) -> std::result::Result<(), Error>,
    ) -> std::result::Result<(), Error> {
        self.at(ep)?;
        self.calls.borrow_mut().push(format!("snapshot {ep}"));
        // The gateway's answer through the real decoder, in awkward pieces.
        let body = gateway_answer(&fake_snapshot(), 5000);
        let mut d = SnapshotDecoder::new(limit);
        for piece in body.as_bytes().chunks(777) {
            d.feed(piece, out)?;
            if self.fail_snapshot && d.messages() > 0 {
                return Err(Error::Fault(
                    "the stream failed after 1 message(s): boom".into(),
                ));
            }
        }
        d.finish().map(|_| ())
    }
    fn move_leader(&self, _: &Access, ep: &str, to: &str) -> std::result::Result<(), Error> {
        let m = self.at(ep)?;
        self.calls
            .borrow_mut()
            .push(format!("move-leader {ep} {to}"));
        if m.id != *self.leader.borrow() {
            return Err(Error::Fault("etcdserver: not leader".into()));
        }
        *self.leader.borrow_mut() = to.to_string();
        Ok(())
    }
    fn remove(&self, _: &Access, ep: &str, id: &str) -> std::result::Result<(), Error> {
        self.at(ep)?;
        self.calls.borrow_mut().push(format!("remove {id}"));
        let before = self.members.borrow().len();
        self.members.borrow_mut().retain(|m| m.id != id);
        if self.members.borrow().len() == before {
            return Err(Error::Fault("etcdserver: member not found".into()));
        }
        if let Some(n) = self.sick_after_remove.get() {
            self.unhealthy.borrow_mut().push(member(n).id);
        }
        Ok(())
    }
}

pub(super) fn empty_plan(dir: &Path) -> Plan {
    Plan {
        bundle: dir.join("bundle"),
        ca: "/pki/ca.pem".into(),
        profile: "none".into(),
        files: vec![],
        steps: vec![],
        etcd: None,
    }
}

pub(super) fn planned(fake: &Fake, remove: &[&str], dir: &Path) -> (Plan, Vec<String>) {
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

pub(super) struct NoRestart;
impl Restarter for NoRestart {
    fn restart(&self, _: &Restart) -> std::result::Result<(), Error> {
        Err(Error::Fault("no component restarts in these plans".into()))
    }
}
pub(super) struct NoProbe;
impl Prober for NoProbe {
    fn check(&self, _: &Gate, _: Option<&str>) -> std::result::Result<(), Error> {
        Err(Error::Fault("no gate in these plans".into()))
    }
}

pub(super) fn run(
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

/// The gateway's answer for `snap`: as etcd sends it, `per` bytes of database per message
/// with the bytes still to come, then the SHA-256 alone (zero remaining_bytes left out).
pub(super) fn gateway_answer(snap: &[u8], per: usize) -> String {
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
