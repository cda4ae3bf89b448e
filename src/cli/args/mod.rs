//! Raw command-line arguments (clap). Values stay as typed here; [`super::config`] validates
//! them and reads the environment once.

use clap::{Parser, Subcommand};

mod change;
mod inspect;
mod issue;
mod kubeconfig;
mod preflight;
mod rollout;

pub use change::*;
pub use inspect::*;
pub use issue::*;
pub use kubeconfig::*;
pub use preflight::*;
pub use rollout::*;

#[derive(Debug, Parser)]
#[command(
    name = "certs",
    version,
    about = "Inspect, reissue and roll out the PKI of Kubernetes control planes",
    disable_help_subcommand = true,
    after_help = super::examples::CERTS
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read every certificate, key and kubeconfig of a node (or the chain a live endpoint serves)
    #[command(after_help = super::examples::INSPECT)]
    Inspect(InspectArgs),
    /// Print the cfssl CSR spec (csr.json) of a certificate, optionally with a SAN edit
    #[command(after_help = super::examples::SPEC)]
    Spec(SpecArgs),
    /// Reissue certificates from the cluster CA with an edited SAN set, into a bundle directory
    #[command(after_help = super::examples::REISSUE)]
    Reissue(ReissueArgs),
    /// Issue a certificate for a new identity made like an existing one (its subject with the
    /// CN replaced, its SANs edited, its usages, a new key), into a bundle for `certs rollout`
    Issue(IssueArgs),
    /// Renew every leaf certificate that expires soon (subject, SANs, key and usages kept), into
    /// one bundle for `certs rollout`
    #[command(after_help = super::examples::RENEW)]
    Renew(RenewArgs),
    /// Before a VIP change or a master retirement: everything that would break
    #[command(after_help = super::examples::PREFLIGHT)]
    Preflight(PreflightArgs),
    /// A VIP add or move, a master retirement or a new master as one bundle: every
    /// certificate, kubeconfig and configuration file of this node the change touches
    Change(ChangeArgs),
    /// Install a reissue bundle: back up, swap, restart in a safe order behind health gates
    #[command(subcommand, after_help = super::examples::ROLLOUT)]
    Rollout(RolloutCommand),
    /// Edit kubeconfigs (server, CA, client certificate) into a bundle for `certs rollout`
    #[command(subcommand, after_help = super::examples::KUBECONFIG)]
    Kubeconfig(KubeconfigCommand),
    /// A change to a whole cluster through Ansible: render one playbook from its inventory that
    /// checks every node, reissues on the CA host and rolls out node by node
    Cluster(ClusterArgs),
    /// Replace a CA in stages (trust both, switch the leaves, drop the old), each a bundle for
    /// `certs rollout`; `status` says which stage a node is in
    #[command(subcommand, name = "rotate-ca", after_help = super::rotate::EXAMPLES)]
    RotateCa(super::rotate::RotateCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = super::examples::COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Print a manual page (roff) for certs or one of its subcommands
    #[command(after_help = super::examples::MAN)]
    Man(ManArgs),
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The subcommand whose page to print, e.g. `rollout apply` [default: certs(1) itself]
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn parses_inspect() {
        let args = Args::try_parse_from([
            "certs",
            "inspect",
            "/etc/kubernetes",
            "https://10.0.0.1:6443",
            "-o",
            "json",
            "--warn-within",
            "30d",
            "--ca",
            "ca.crt",
        ])
        .unwrap();
        let Command::Inspect(i) = args.command else {
            panic!("not inspect")
        };
        assert_eq!(i.targets, ["/etc/kubernetes", "https://10.0.0.1:6443"]);
        assert_eq!(i.output, Output::Json);
        assert_eq!(i.warn_within.as_deref(), Some("30d"));
        assert_eq!(i.root, PathBuf::from("/"));
    }

    #[test]
    fn parses_reissue() {
        let args = Args::try_parse_from([
            "certs",
            "reissue",
            "a.pem",
            "b.pem",
            "--drop-san",
            "172.72.0.96",
            "--drop-san",
            "172.72.0.97",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--new-key",
            "--dry-run",
        ])
        .unwrap();
        let Command::Reissue(r) = args.command else {
            panic!("not reissue")
        };
        assert_eq!(r.certs.len(), 2);
        assert_eq!(r.sans.drop, ["172.72.0.96", "172.72.0.97"]);
        assert!(r.new_key && r.dry_run);
        // --ca without --ca-key is a usage error, and so is a spec with neither CERT nor template.
        assert!(Args::try_parse_from(["certs", "reissue", "a.pem", "--ca", "ca.pem"]).is_err());
        assert!(Args::try_parse_from(["certs", "spec"]).is_err());
    }

    #[test]
    fn parses_renew() {
        let args = Args::try_parse_from([
            "certs", "renew", "--root", "/mnt", "--within", "60d", "--out", "b", "-o", "json",
        ])
        .unwrap();
        let Command::Renew(r) = args.command else {
            panic!("not renew")
        };
        assert_eq!(r.within, "60d");
        assert_eq!(r.output, ResultOutput::Json);
        assert!(r.paths.is_empty() && !r.all);
        // --out is needed unless nothing is written; --all and --within say different things.
        assert!(Args::try_parse_from(["certs", "renew"]).is_err());
        assert!(Args::try_parse_from(["certs", "renew", "--dry-run"]).is_ok());
        assert!(
            Args::try_parse_from(["certs", "renew", "--all", "--within", "5d", "--dry-run"])
                .is_err()
        );
    }

    #[test]
    fn rejects_unknown_output() {
        assert!(Args::try_parse_from(["certs", "inspect", "-o", "yaml"]).is_err());
    }
}
