//! Planning a retirement: the membership steps added after the file steps, with what the live
//! cluster says, and every check that refuses a retirement before anything changes.

use std::path::{Path, PathBuf};

use super::*;
use crate::rollout::plan::{Plan, Step};
use crate::rollout::Error;
/// Adds the membership steps of retiring `remove` after the plan's file steps (the members
/// restart on their new certificates while the cluster still has every member, so a rolling
/// restart keeps quorum; the retired members leave last), with what the
/// live cluster says (read-only: member list, health, leader, keyspace size). Returns the
/// problems met (no access, no live cluster); [`check`] judges the rest.
pub fn plan(
    plan: &mut Plan,
    remove: &[String],
    access: std::result::Result<Access, Error>,
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
pub(super) fn snapshot_size(db_size: u64) -> u64 {
    db_size.saturating_add(32)
}

pub(super) fn no_room(db_size: u64, dir: &Path, room: u64) -> Error {
    Error::NoRoom {
        db_size,
        dir: dir.to_path_buf(),
        room,
    }
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

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::node::Component as NodeComponent;
    use crate::rollout::plan::Plan;

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
