//! How a subcommand ended, and the one place the process exit code is decided.
//!
//! Every subcommand's `run` returns `Result<Outcome>`: an [`Outcome`] when it ran to its verdict,
//! an [`Error`] when it stopped. [`exit_code`] maps both to the codes README.md documents
//! ("Exit codes" of inspect, renew and rollout); nothing else in the crate names a number.

use crate::error::Error;

/// How a subcommand that ran to its verdict ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; nothing that fails the run (exit 0).
    Clean,
    /// A check ran and found a problem: expired/expiring with `--warn-within`, an endpoint that
    /// does not verify, a preflight check that fails, a due leaf refused, a rollout interrupted
    /// or contradicted by its files (exit 1).
    Problem,
    /// Refused before anything was written, the reasons already said on stderr (one line each):
    /// `reissue` with a refused target, a command line clap rejected (exit 2, as a usage error).
    Refused,
    /// A rollout failed a gate and was rolled back, or an etcd membership step stopped (exit 3).
    RolledBack,
    /// The rollback failed too: manual action needed (exit 4).
    RollbackFailed,
}

/// The process exit code of a run: the only place exit codes are decided.
///
/// An error is a usage, input or I/O error (2), except a closed stdout (`certs inspect | head`):
/// the reader went away, which is not the command's failure (0).
pub fn exit_code(result: Result<Outcome, &Error>) -> u8 {
    match result {
        Ok(Outcome::Clean) => 0,
        Ok(Outcome::Problem) => 1,
        Ok(Outcome::Refused) => 2,
        Ok(Outcome::RolledBack) => 3,
        Ok(Outcome::RollbackFailed) => 4,
        Err(Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(_) => 2,
    }
}

/// `Problem` when `failed`, else `Clean`.
pub fn problem_if(failed: bool) -> Outcome {
    if failed {
        Outcome::Problem
    } else {
        Outcome::Clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_the_documented_codes() {
        assert_eq!(exit_code(Ok(Outcome::Clean)), 0);
        assert_eq!(exit_code(Ok(Outcome::Problem)), 1);
        assert_eq!(exit_code(Ok(Outcome::Refused)), 2);
        assert_eq!(exit_code(Ok(Outcome::RolledBack)), 3);
        assert_eq!(exit_code(Ok(Outcome::RollbackFailed)), 4);
    }

    #[test]
    fn errors_are_exit_2_but_a_closed_stdout_is_not_a_failure() {
        assert_eq!(exit_code(Err(&Error::Usage("bad".into()))), 2);
        let refused = Error::Refused {
            what: "refused".into(),
            problems: vec!["a".into()],
        };
        assert_eq!(exit_code(Err(&refused)), 2);
        let closed = Error::Output(std::io::ErrorKind::BrokenPipe.into());
        assert_eq!(exit_code(Err(&closed)), 0);
        let full = Error::Output(std::io::Error::other("disk full"));
        assert_eq!(exit_code(Err(&full)), 2);
    }
}
