//! Running the membership steps: the snapshot, the leader move, each removal behind its gates,
//! and what a stop or a rollback says about them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::planning::{no_room, snapshot_size};
use super::stream::SnapshotSum;
use super::*;
use crate::error::Result;
use crate::rollout::exec::{failed_prefix, Ended, Executor};
use crate::rollout::journal::{Journal, StepState};
use crate::rollout::plan::Plan;
use crate::rollout::Error;
use crate::sys::clock::Stopwatch;
/// A new name for a snapshot in `dir` (created, 0700, if missing): `<time>.db`, `<time>-2.db`, …
fn snapshot_path(dir: &Path, now: i64) -> std::result::Result<PathBuf, Error> {
    crate::sys::fs::create_new_dir(dir).or_else(|e| {
        if crate::sys::fs::is_dir(dir) {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    let stamp = crate::duration::rfc3339(now).replace([':', '-'], "");
    let mut path = dir.join(format!("{stamp}.db"));
    let mut n = 2;
    while !crate::sys::fs::is_absent(&path) {
        path = dir.join(format!("{stamp}-{n}.db"));
        n += 1;
    }
    Ok(path)
}

/// Whether step `i` of the plan is a membership step.
pub fn is_membership(plan: &Plan, i: usize) -> bool {
    plan.etcd.as_ref().is_some_and(|r| r.action(i).is_some())
}

/// Why a membership step stopped, and whether its change (a removal) was made.
pub(in crate::rollout) struct Stop {
    reason: Error,
    applied: bool,
}

fn not_applied(reason: Error) -> Stop {
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
        f: impl Fn(&str) -> std::result::Result<T, Error>,
    ) -> std::result::Result<T, Error> {
        let mut errors = Vec::new();
        for ep in &self.endpoints {
            match f(ep) {
                Ok(v) => return Ok(v),
                Err(e) => errors.push(e),
            }
        }
        Err(if errors.is_empty() {
            Error::NoEndpoint
        } else {
            Error::EveryEndpoint(errors)
        })
    }

    fn members(&self) -> std::result::Result<Vec<MemberRef>, Error> {
        self.any(|ep| self.admin.members(self.access, ep))
    }

    fn kept(&self, list: &[MemberRef]) -> Vec<MemberRef> {
        list.iter()
            .filter(|m| !self.retired.contains(&m.id))
            .cloned()
            .collect()
    }

    fn leader(&self) -> std::result::Result<String, Error> {
        let s = self.any(|ep| self.admin.status(self.access, ep))?;
        if s.leader.is_empty() || s.leader == "0" {
            Err(Error::NoLeader)
        } else {
            Ok(s.leader)
        }
    }

    fn healthy(&self, m: &MemberRef) -> std::result::Result<(), Error> {
        let ep = m.endpoint().ok_or_else(|| Error::NoClientUrl {
            member: m.describe(),
        })?;
        match self.admin.healthy(self.access, ep) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Unhealthy {
                member: m.describe(),
                endpoint: ep.into(),
            }),
            Err(e) => Err(e.context(format!("{} at {ep}", m.describe()))),
        }
    }

    /// The gate after a removal (and after a leader move): `gone` no longer listed, every
    /// kept member healthy, a kept member leading.
    fn quorum(&self, gone: Option<&MemberRef>) -> std::result::Result<String, Error> {
        let list = self.members()?;
        if let Some(m) = gone {
            if list.iter().any(|x| x.id == m.id) {
                return Err(Error::StillListed {
                    member: m.describe(),
                });
            }
        }
        let kept = self.kept(&list);
        if kept.is_empty() {
            return Err(Error::NoKeptListed);
        }
        for k in &kept {
            self.healthy(k)?;
        }
        let leader = self.leader()?;
        let Some(l) = kept.iter().find(|k| k.id == leader) else {
            return Err(Error::LeaderNotKept { leader });
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
        mut f: impl FnMut() -> std::result::Result<String, Error>,
    ) -> std::result::Result<String, Error> {
        let t = Stopwatch::start();
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if t.elapsed() >= self.timing.deadline => {
                    return Err(Error::NotWithin {
                        secs: self.timing.deadline.as_secs(),
                        source: Box::new(e),
                    })
                }
                Err(_) => crate::sys::clock::sleep(self.timing.interval),
            }
        }
    }

    fn done(&self, j: &mut Journal, what: &str) -> std::result::Result<(), Stop> {
        j.note((self.now)(), format!("{COMPONENT}: {DONE}{what}"));
        self.save(j).map_err(|e| not_applied(e.into()))
    }

    /// Runs membership step `i` (idempotent: what is already done is checked, not redone).
    pub(in crate::rollout) fn run_membership(
        &mut self,
        j: &mut Journal,
        i: usize,
    ) -> std::result::Result<(), Stop> {
        let r = j
            .plan
            .etcd
            .clone()
            .ok_or_else(|| not_applied(Error::NoMembershipInPlan))?;
        let planned = r
            .action(i)
            .cloned()
            .ok_or_else(|| not_applied(Error::NotMembershipStep { step: i + 1 }))?;
        let access = r
            .access
            .clone()
            .ok_or_else(|| not_applied(Error::NoAccessInPlan))?;
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
        self.save(j).map_err(|e| not_applied(e.into()))?;
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
                            Some(stop.reason.to_string()),
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
                            Some(stop.reason.to_string()),
                        );
                        return Err(stop);
                    }
                }
            }
        }
        j.steps[i] = StepState::Healthy;
        self.save(j).map_err(|e| Stop {
            reason: e.into(),
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
        let taken = (|| -> std::result::Result<String, Error> {
            (self.fault)("etcd snapshot")?;
            let before = live.admin.status(live.access, endpoint)?;
            let path = snapshot_path(dir, (self.now)())?;
            let room = crate::sys::fs::free_bytes(dir);
            if let Some(room) = room.filter(|&r| snapshot_size(before.db_size) > r) {
                return Err(no_room(before.db_size, dir, room));
            }
            let limit = room.unwrap_or(SNAPSHOT_CAP).min(SNAPSHOT_CAP);
            // Into a temp file beside `path` (removed on any failure), checked on the way.
            let mut file = crate::sys::fs::StreamedFile::create(&path, 0o600)?;
            let mut sum = SnapshotSum::new();
            let idle = self.timing.deadline.max(Duration::from_secs(1));
            live.admin
                .snapshot(live.access, endpoint, idle, limit, &mut |bytes| {
                    sum.push(bytes);
                    file.write(bytes).map_err(Error::from)
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
            let written = file.commit()?;
            if written != total {
                return Err(Error::ShortWrite {
                    path,
                    written,
                    total,
                });
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
                let reason = e.context(format!("snapshot over {endpoint}"));
                self.event(COMPONENT, "snapshot", "failed", t, Some(reason.to_string()));
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
                return Err(Error::StillLeads {
                    member: describe(&list, &leader),
                });
            }
            let from =
                list.iter()
                    .find(|m| m.id == leader)
                    .ok_or_else(|| Error::LeaderNotListed {
                        leader: leader.clone(),
                    })?;
            let target = live
                .kept(&list)
                .into_iter()
                .filter(|k| live.healthy(k).is_ok())
                .min_by_key(|k| k.id != to.id)
                .ok_or(Error::NoHealthyKept)?;
            let ep = from.endpoint().ok_or_else(|| Error::NoClientUrl {
                member: format!("the leader {}", from.describe()),
            })?;
            (self.fault)("etcd move-leader")?;
            asked = Some((from.describe(), target.describe()));
            live.admin
                .move_leader(live.access, ep, &target.id)
                .map_err(|e| e.context(format!("{} refused", from.describe())))?;
            accepted = true;
            Err(Error::StillLeads {
                member: from.describe(),
            })
        });
        match (asked, outcome) {
            (None, Ok(leader)) => Ok((
                false,
                format!("{leader} leads and is kept: nothing to move"),
            )),
            (None, Err(e)) => Err(not_applied(e.context("moving leadership"))),
            (Some((from, target)), Ok(leads)) => Ok((
                true,
                format!("leadership moved from {from} to {target}: {leads} leads"),
            )),
            (Some((from, to)), Err(e)) => Err(not_applied(Error::LeaderNotMoved {
                from,
                to,
                source: Box::new(e),
            })),
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
        let before = |e: Error| not_applied(e.context(format!("before removing {}", m.describe())));
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
                        .map_err(|e| e.context("kept member not healthy"))?;
                }
                let up: Vec<&MemberRef> = list.iter().filter(|x| live.healthy(x).is_ok()).collect();
                if up.len() * 2 <= list.len() {
                    return Err(Error::NoQuorum {
                        healthy: up.len(),
                        members: list.len(),
                    });
                }
                let remaining = list.len() - 1;
                let healthy = up.iter().filter(|x| x.id != m.id).count();
                if healthy * 2 <= remaining {
                    return Err(Error::WouldLoseQuorum {
                        healthy,
                        left: remaining,
                    });
                }
                if live.leader()? == m.id {
                    let to = to
                        .clone()
                        .or_else(|| kept.first().cloned())
                        .ok_or(Error::NoKeptToLead)?;
                    if let (true, what) = self.move_off(live, &to).map_err(|s| s.reason)? {
                        notes.push(what);
                    }
                }
                (self.fault)("etcd member remove")?;
                match live.any(|ep| live.admin.remove(live.access, ep, &m.id)) {
                    Ok(()) => Ok(String::new()),
                    // The change may have committed though its answer was lost.
                    Err(_) if live.members().is_ok_and(|l| !listed(&l)) => Ok(String::new()),
                    Err(e) => Err(e.context("member remove")),
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
            reason: Error::GateAfterRemoval {
                member: m.describe(),
                source: Box::new(e),
            },
            applied: true,
        })?;
        said.push(format!("gate: {gate}"));
        Ok(said.join("; "))
    }

    /// A membership step stopped: recorded `Failed`. After a removal the rollout stays
    /// interrupted for `resume`; before any, it ends with nothing changed.
    pub(in crate::rollout) fn membership_stopped(
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
            reason: stop.reason.to_string(),
            done,
            resumable: true,
        })
    }
}

/// A rollback restores files only: says (an event each) which membership changes of the
/// recorded rollout stay.
pub(in crate::rollout) fn not_undone(ex: &mut Executor, j: &Journal) {
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
    use super::super::testkit::*;
    use super::*;
    use crate::rollout::journal::Outcome;

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
}
