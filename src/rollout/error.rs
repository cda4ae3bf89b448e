//! The typed errors of `certs rollout`: a profile, a gate URL, the node's way to etcd, a swap, a
//! restart, a health gate, and the etcd membership steps (gateway, snapshot stream, quorum).
//! Each says what was expected and what was found, naming the file, member or endpoint; the
//! texts are the ones the command prints. Converted into [`crate::error::Error`] (an error of
//! another layer met on the way, [`Error::Sys`], goes back out as it came in).

use std::path::PathBuf;

/// How to give the membership steps their way to etcd by hand.
const ETCD_HINT: &str = "pass --health etcd=https://HOST:PORT --health-ca etcd=FILE --health-cert etcd=FILE --health-key etcd=FILE, or --no-etcd-membership";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A failure injected at a fault point (tests), or said by a test double.
    #[error("{0}")]
    Fault(String),

    /// An error of another layer (a file read or written through [`crate::sys`]).
    #[error(transparent)]
    Sys(Box<crate::error::Error>),

    #[error(transparent)]
    Probe(#[from] crate::sys::tls::ProbeError),

    #[error(transparent)]
    Endpoint(#[from] crate::endpoint::InvalidTarget),

    /// `context: error`: where an error of a step happened.
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },

    // --- profiles --------------------------------------------------------------------------
    #[error("expected a profile (kubeadm, kubespray, binary) or a profile file, found `{name}`")]
    UnknownProfile { name: String },

    #[error("built-in profile {name}: {source}")]
    BuiltinProfile {
        name: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("`{}`: expected a rollout profile (JSON), found an error: {source}", path.display())]
    ProfileFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot tell the node's layout from the bundle's targets; pass --profile kubeadm|kubespray|binary|FILE")]
    UnknownLayout,

    // --- resolving the plan against the node ----------------------------------------------
    #[error("--restart {name}: expected a component of this node or profile ({}), found none named so", .known.join(", "))]
    UnknownRestart { name: String, known: Vec<String> },

    #[error("{flag} {name}: `{name}` has no changed file in this bundle, so the plan does not restart it (it restarts: {}); add --restart {name} to restart it anyway", restarted(.restarts))]
    NotRestarted {
        flag: String,
        name: String,
        restarts: Vec<String>,
    },

    #[error("--health-cert {name} and --health-key {name} go together: give both")]
    HalfIdentity { name: String },

    #[error("cannot resolve the health endpoint `{url}` of {name} (no --advertise-address in its configuration); pass --health {name}=https://ADDRESS:PORT/PATH")]
    UnresolvedHealth { url: String, name: String },

    // --- the journal and the backup --------------------------------------------------------
    #[error("an interrupted rollout is recorded in {}: run `certs rollout status`, then `resume` or `rollback`", journal.display())]
    Interrupted { journal: PathBuf },

    /// `to`: `resume`, `roll back`.
    #[error("no rollout recorded to {to}")]
    NothingRecorded { to: &'static str },

    #[error("no journal")]
    NoJournal,

    #[error("{}; then run `certs rollout resume` again", .stuck.join("; "))]
    StillParked { stuck: Vec<String> },

    #[error("the recorded rollout is not interrupted (it ended: {outcome:?}); nothing to resume")]
    NotInterrupted {
        outcome: crate::rollout::journal::Outcome,
    },

    #[error("expected the backup of a rollout recorded in {} ({}), found {}", state_dir.display(), .known.join(", "), found.display())]
    UnknownBackup {
        state_dir: PathBuf,
        known: Vec<String>,
        found: PathBuf,
    },

    #[error("the last rollout recorded in {} is interrupted: finish it with `certs rollout resume` or `certs rollout rollback` before rolling back an earlier one", state_dir.display())]
    LastInterrupted { state_dir: PathBuf },

    /// A journal or backup manifest that does not serialise.
    #[error("{0}")]
    Serialize(#[source] serde_json::Error),

    // --- gate URLs and the way to etcd -----------------------------------------------------
    #[error("expected an https:// or http:// URL, found `{url}`")]
    NotHttpUrl { url: String },

    #[error("`{url}`: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: crate::endpoint::InvalidTarget,
    },

    #[error("`{url}`: port 0 is not a port")]
    PortZero { url: String },

    #[error("--health etcd={url}: the membership steps speak to etcd over https only")]
    EtcdNotHttps { url: String },

    #[error("etcd listens for clients on no https URL ({origin}); {ETCD_HINT}")]
    EtcdListensNoHttps { origin: String },

    #[error("this node runs no etcd, and the apiserver's --etcd-servers ({servers}) names no https URL; {ETCD_HINT}")]
    EtcdServersNoHttps { servers: String },

    #[error("this node runs no etcd and no kube-apiserver with --etcd-servers, so nothing says how to reach etcd; {ETCD_HINT}")]
    NoWayToEtcd,

    #[error("no CA to verify etcd with: etcd has no --trusted-ca-file and no apiserver names --etcd-cafile; {ETCD_HINT}")]
    NoEtcdCa,

    #[error("etcd requires client certificates and none usable was found on this node (kubeadm's healthcheck-client beside the trusted CA, the apiserver's --etcd-certfile, etcd's own certificate with client auth); {ETCD_HINT}")]
    NoEtcdClient,

    // --- swaps -----------------------------------------------------------------------------
    #[error("cannot read `{}`: {source}", path.display())]
    ReadBundleFile {
        path: PathBuf,
        #[source]
        source: Box<crate::error::Error>,
    },

    #[error("no backup of `{}`", target.display())]
    NoBackup { target: PathBuf },

    #[error("cannot read backup `{}`: {source}", path.display())]
    ReadBackup {
        path: PathBuf,
        #[source]
        source: Box<crate::error::Error>,
    },

    #[error("`{}`: expected {what} with SHA-256 {want}, found SHA-256 {got}", path.display())]
    Sha {
        path: PathBuf,
        what: &'static str,
        want: String,
        got: String,
    },

    #[error("cannot remove `{}`: {source}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("after the swap `{}` does not pair with the new key", path.display())]
    NotPaired { path: PathBuf },

    // --- restarts --------------------------------------------------------------------------
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{cmd}` failed ({status}): {output}")]
    CommandFailed {
        cmd: String,
        status: String,
        output: String,
    },

    #[error("{}: no file name", path.display())]
    NoFileName { path: PathBuf },

    #[error("cannot park {}: {source}", manifest.display())]
    Park {
        manifest: PathBuf,
        #[source]
        source: Box<crate::error::Error>,
    },

    #[error("cannot put {} back from {}: {source} — move it back by hand", manifest.display(), parked.display())]
    Unpark {
        manifest: PathBuf,
        parked: PathBuf,
        #[source]
        source: Box<crate::error::Error>,
    },

    // --- health gates ----------------------------------------------------------------------
    #[error("{url} not healthy on the {which} certificate within {secs}s: {source}")]
    GateTimeout {
        url: String,
        /// `new` or `old`.
        which: &'static str,
        secs: u64,
        #[source]
        source: Box<Error>,
    },

    /// What a plain-HTTP health request said.
    #[error("{0}")]
    Http(String),

    #[error("{}: {reason}", path.display())]
    Pem { path: PathBuf, reason: String },

    #[error("no certificate served")]
    NoCertServed,

    #[error("served certificate unreadable: {reason}")]
    ServedUnreadable { reason: String },

    #[error("served chain: {trust}")]
    ServedChain { trust: String },

    #[error("serves `{subject}`, which is not self-signed: give the gate the CA that signed it")]
    NotSelfSigned { subject: String },

    #[error("serves serial {got}, expected {want}")]
    WrongSerial { got: String, want: String },

    #[error("GET {path} answered {status}")]
    HealthStatus { path: String, status: u16 },

    #[error("GET {path} answered `{body}`, expected it to contain `{want}`")]
    HealthBody {
        path: String,
        body: String,
        want: String,
    },

    // --- etcd: the gateway -----------------------------------------------------------------
    #[error("no etcd access in this run")]
    NoEtcdAccess,

    /// What preflight's etcd gateway (member list, health) said.
    #[error("{0}")]
    EtcdSaid(String),

    #[error("{endpoint}{path} answered {status}: {said}")]
    Gateway {
        endpoint: String,
        path: String,
        status: u16,
        said: String,
    },

    #[error("{endpoint}{path}: not JSON ({source})")]
    NotJson {
        endpoint: String,
        path: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{endpoint}{path}: reading the stream after {messages} message(s), {bytes} bytes of snapshot: {source}")]
    StreamRead {
        endpoint: String,
        path: String,
        messages: usize,
        bytes: u64,
        #[source]
        source: std::io::Error,
    },

    // --- etcd: the snapshot stream ---------------------------------------------------------
    #[error("after {messages} message(s): {found:?} where a JSON object should start")]
    NotObjectStart { messages: usize, found: char },

    #[error("message {n} is longer than {max} bytes")]
    MessageTooLong { n: usize, max: usize },

    #[error("message {n} is not JSON ({source})")]
    MessageNotJson {
        n: usize,
        #[source]
        source: serde_json::Error,
    },

    #[error("the stream failed after {messages} message(s): {said}")]
    StreamFailed { messages: usize, said: String },

    #[error("message {n} has a blob that is not base64 ({source})")]
    BlobNotBase64 {
        n: usize,
        #[source]
        source: base64::DecodeError,
    },

    #[error("the snapshot is larger than the {limit} bytes it may take ({bytes} bytes {} after {messages} message(s))", if *announced { "announced" } else { "received" })]
    SnapshotTooLarge {
        limit: u64,
        bytes: u64,
        /// Whether etcd announced `bytes` (else they were received).
        announced: bool,
        messages: usize,
    },

    #[error("the answer ends inside message {n} ({bytes} bytes of it)")]
    EndsInsideMessage { n: usize, bytes: usize },

    #[error("the answer holds no snapshot message")]
    NoSnapshotMessage,

    #[error("{bytes} bytes: too short for a snapshot")]
    SnapshotTooShort { bytes: u64 },

    #[error("not a bbolt database (no meta page magic at byte 16)")]
    NotBbolt,

    #[error("its SHA-256 is {got}, etcd sent {want}: the snapshot is damaged")]
    SnapshotDamaged { got: String, want: String },

    #[error("the keyspace is {db_size} bytes, its snapshot does not fit in the {room} bytes free for {}: free space there or give --state-dir on a larger file system; or take the snapshot by hand (the plan prints the etcdctl line), then run the member steps by hand too, or the rollout with --no-etcd-membership", dir.display())]
    NoRoom {
        db_size: u64,
        dir: PathBuf,
        room: u64,
    },

    #[error("{} holds {written} bytes, {total} were received", path.display())]
    ShortWrite {
        path: PathBuf,
        written: u64,
        total: u64,
    },

    // --- etcd: the membership steps --------------------------------------------------------
    #[error("the plan has no etcd membership")]
    NoMembershipInPlan,

    #[error("step {step} is no membership step")]
    NotMembershipStep { step: usize },

    #[error("the plan has no way to reach etcd")]
    NoAccessInPlan,

    #[error("no endpoint to ask")]
    NoEndpoint,

    /// Every endpoint asked failed: each one's error.
    #[error("{}", join(.0))]
    EveryEndpoint(Vec<Error>),

    #[error("the cluster has no leader")]
    NoLeader,

    #[error("{member} has no https client URL")]
    NoClientUrl { member: String },

    #[error("{member} reports unhealthy at {endpoint}")]
    Unhealthy { member: String, endpoint: String },

    #[error("{member} is still listed")]
    StillListed { member: String },

    #[error("no kept member is listed")]
    NoKeptListed,

    #[error("the leader ({leader}) is not a kept member")]
    LeaderNotKept { leader: String },

    #[error("not within {secs}s: {source}")]
    NotWithin {
        secs: u64,
        #[source]
        source: Box<Error>,
    },

    #[error("{member} still leads")]
    StillLeads { member: String },

    #[error("the leader {leader} is not in the member list")]
    LeaderNotListed { leader: String },

    #[error("no kept member is healthy to take it")]
    NoHealthyKept,

    #[error("no kept member to lead")]
    NoKeptToLead,

    #[error("only {healthy} of the {members} members are healthy: no quorum to commit a removal")]
    NoQuorum { healthy: usize, members: usize },

    #[error("only {healthy} of the {left} members left after it would be healthy: no quorum")]
    WouldLoseQuorum { healthy: usize, left: usize },

    #[error("moving leadership: asked {from} to hand it to {to}, but no kept member led {source}")]
    LeaderNotMoved {
        from: String,
        to: String,
        #[source]
        source: Box<Error>,
    },

    #[error("{member} is removed, but the quorum gate did not pass {source}")]
    GateAfterRemoval {
        member: String,
        #[source]
        source: Box<Error>,
    },
}

fn restarted(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

fn join(errors: &[Error]) -> String {
    errors
        .iter()
        .map(Error::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// `context: self`.
    pub fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// A PEM file at `path` that does not parse, saying why.
    pub fn pem<E: std::fmt::Display>(path: &std::path::Path) -> impl FnOnce(E) -> Error {
        let path = path.to_path_buf();
        move |e| Error::Pem {
            path,
            reason: e.to_string(),
        }
    }

    /// An error of another layer met on the way.
    pub fn sys(e: impl Into<crate::error::Error>) -> Error {
        Error::from(e.into())
    }
}

/// An error of another layer; one of this layer that went out comes back as it was.
impl From<crate::error::Error> for Error {
    fn from(e: crate::error::Error) -> Error {
        match e {
            crate::error::Error::Rollout(e) => e,
            e => Error::Sys(Box::new(e)),
        }
    }
}

/// Into the crate's error: an error of another layer goes back out as it came in.
/// What `sys` reports comes in as the top-level error it becomes, unchanged on the way out.
impl From<crate::sys::Error> for Error {
    fn from(e: crate::sys::Error) -> Error {
        Error::Sys(Box::new(e.into()))
    }
}

impl From<Error> for crate::error::Error {
    fn from(e: Error) -> crate::error::Error {
        match e {
            Error::Sys(e) => *e,
            e => crate::error::Error::Rollout(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_errors_print_the_texts_the_command_always_printed() {
        let too_large = |announced| Error::SnapshotTooLarge {
            limit: 10_000,
            bytes: 16_384,
            announced,
            messages: 1,
        };
        assert_eq!(
            too_large(true).to_string(),
            "the snapshot is larger than the 10000 bytes it may take (16384 bytes announced after 1 message(s))"
        );
        assert!(too_large(false)
            .to_string()
            .ends_with("(16384 bytes received after 1 message(s))"));
        let every = Error::EveryEndpoint(vec![
            Error::Fault("cannot connect to https://127.0.0.11:2379: refused".into()),
            Error::NoLeader,
        ]);
        assert_eq!(
            every.context("member remove").to_string(),
            "member remove: cannot connect to https://127.0.0.11:2379: refused; the cluster has no leader"
        );
        let gate = Error::GateTimeout {
            url: "https://127.0.0.1:2379".into(),
            which: "new",
            secs: 5,
            source: Box::new(Error::WrongSerial {
                got: "01".into(),
                want: "02".into(),
            }),
        };
        assert_eq!(
            gate.to_string(),
            "https://127.0.0.1:2379 not healthy on the new certificate within 5s: serves serial 01, expected 02"
        );
        assert!(Error::NoEtcdCa
            .to_string()
            .ends_with("; pass --health etcd=https://HOST:PORT --health-ca etcd=FILE --health-cert etcd=FILE --health-key etcd=FILE, or --no-etcd-membership"));
    }

    #[test]
    fn refusals_of_the_plan_and_the_journal_print_the_texts_they_printed_as_usage_errors() {
        let cases: Vec<(Error, &str)> = vec![
            (
                Error::UnknownRestart {
                    name: "kubelet".into(),
                    known: vec!["etcd".into(), "kube-apiserver".into()],
                },
                "--restart kubelet: expected a component of this node or profile (etcd, kube-apiserver), found none named so",
            ),
            (
                Error::NotRestarted {
                    flag: "--health".into(),
                    name: "etcd".into(),
                    restarts: vec![],
                },
                "--health etcd: `etcd` has no changed file in this bundle, so the plan does not restart it (it restarts: nothing); add --restart etcd to restart it anyway",
            ),
            (
                Error::NotRestarted {
                    flag: "--restart-cmd".into(),
                    name: "etcd".into(),
                    restarts: vec!["kube-apiserver".into(), "kubelet".into()],
                },
                "--restart-cmd etcd: `etcd` has no changed file in this bundle, so the plan does not restart it (it restarts: kube-apiserver, kubelet); add --restart etcd to restart it anyway",
            ),
            (
                Error::HalfIdentity { name: "etcd".into() },
                "--health-cert etcd and --health-key etcd go together: give both",
            ),
            (
                Error::UnresolvedHealth {
                    url: "https://{advertise}:6443".into(),
                    name: "kube-apiserver".into(),
                },
                "cannot resolve the health endpoint `https://{advertise}:6443` of kube-apiserver (no --advertise-address in its configuration); pass --health kube-apiserver=https://ADDRESS:PORT/PATH",
            ),
            (
                Error::Interrupted {
                    journal: "/var/lib/certs/journal.json".into(),
                },
                "an interrupted rollout is recorded in /var/lib/certs/journal.json: run `certs rollout status`, then `resume` or `rollback`",
            ),
            (
                Error::NothingRecorded { to: "roll back" },
                "no rollout recorded to roll back",
            ),
            (
                Error::StillParked {
                    stuck: vec!["cannot put back a".into(), "cannot put back b".into()],
                },
                "cannot put back a; cannot put back b; then run `certs rollout resume` again",
            ),
            (
                Error::NotInterrupted {
                    outcome: crate::rollout::journal::Outcome::Done,
                },
                "the recorded rollout is not interrupted (it ended: Done); nothing to resume",
            ),
            (
                Error::UnknownBackup {
                    state_dir: "/s".into(),
                    known: vec!["/s/backups/1".into(), "/s/backups/2".into()],
                    found: "/elsewhere".into(),
                },
                "expected the backup of a rollout recorded in /s (/s/backups/1, /s/backups/2), found /elsewhere",
            ),
            (
                Error::LastInterrupted {
                    state_dir: "/s".into(),
                },
                "the last rollout recorded in /s is interrupted: finish it with `certs rollout resume` or `certs rollout rollback` before rolling back an earlier one",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }

    #[test]
    fn an_error_of_another_layer_goes_back_out_as_it_came_in() {
        let read = crate::error::Error::Read {
            path: "/etc/kubernetes/pki/ca.crt".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let text = read.to_string();
        let through = Error::from(read);
        assert_eq!(through.to_string(), text);
        let back = crate::error::Error::from(through);
        assert!(matches!(back, crate::error::Error::Read { .. }), "{back:?}");
        // A rollout error that went out and comes back is not wrapped twice.
        let out = crate::error::Error::from(Error::NoLeader);
        assert!(matches!(out, crate::error::Error::Rollout(Error::NoLeader)));
        assert!(matches!(Error::from(out), Error::NoLeader));
        assert_eq!(
            crate::cli::exit_code(Err(&crate::error::Error::from(Error::UnknownLayout))),
            2
        );
    }
}
