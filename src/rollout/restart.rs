//! The real restarter: a command, a systemd unit (after a daemon-reload when its unit file
//! changed), or a static pod parked out of the kubelet's manifests directory and put back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::exec::Restarter;
use super::profile::Restart;
use super::Error;

pub struct SystemRestarter {
    pub timeout: Duration,
    /// Longer than the kubelet's 20 s file check, so the pod is really stopped.
    pub park_for: Duration,
}

/// Where a static pod manifest waits while parked: a directory beside the manifests directory
/// (`/etc/kubernetes/manifests/etcd.yaml` → `/etc/kubernetes/manifests.certs-parked/etcd.yaml`),
/// so parking is a rename on the same file system, never a copy, and a crash leaves the manifest
/// in one of two known places. Not inside the manifests directory: the kubelet reads every file
/// there.
pub fn parked_path(manifest: &Path) -> PathBuf {
    let name = manifest.file_name().unwrap_or(manifest.as_os_str());
    let parent = manifest.parent().unwrap_or(Path::new(""));
    let dir = match parent.file_name() {
        Some(d) => {
            let mut d = d.to_os_string();
            d.push(".certs-parked");
            parent.with_file_name(d)
        }
        None => parent.join(".certs-parked"),
    };
    dir.join(name)
}

impl Restarter for SystemRestarter {
    fn restart(&self, restart: &Restart) -> Result<(), Error> {
        let run = |cmd: &str| -> Result<(), Error> {
            let ran =
                crate::sys::proc::run_shell(cmd, self.timeout).map_err(|source| Error::Spawn {
                    cmd: cmd.into(),
                    source,
                })?;
            if ran.success {
                Ok(())
            } else {
                Err(Error::CommandFailed {
                    cmd: cmd.into(),
                    status: ran.status,
                    output: ran.output,
                })
            }
        };
        match restart {
            Restart::Command(cmd) => run(cmd),
            Restart::Systemd(unit) | Restart::SystemdReload(unit) => {
                if matches!(restart, Restart::SystemdReload(_)) {
                    run("systemctl daemon-reload")?;
                }
                run(&format!("systemctl restart {}", shell_quote(unit)))?;
                run(&format!(
                    "systemctl is-active --quiet {}",
                    shell_quote(unit)
                ))
            }
            Restart::StaticPod(manifest) => {
                if manifest.file_name().is_none() {
                    return Err(Error::NoFileName {
                        path: manifest.clone(),
                    });
                }
                let parked = parked_path(manifest);
                // Already parked (a run stopped while parked, not put back yet): just wait.
                let already = !crate::sys::fs::exists(manifest) && crate::sys::fs::exists(&parked);
                if !already {
                    crate::sys::fs::move_synced(manifest, &parked).map_err(|e| Error::Park {
                        manifest: manifest.clone(),
                        source: Box::new(e.into()),
                    })?;
                }
                crate::sys::clock::sleep(self.park_for);
                crate::sys::fs::move_synced(&parked, manifest).map_err(|e| Error::Unpark {
                    manifest: manifest.clone(),
                    parked: parked.clone(),
                    source: Box::new(e.into()),
                })
            }
        }
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build trees with std::fs
mod tests {
    use super::*;

    #[test]
    fn static_pod_manifest_is_parked_then_restored() {
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests");
        std::fs::create_dir(&manifests).unwrap();
        let manifest = manifests.join("etcd.yaml");
        std::fs::write(&manifest, "kind: Pod\n").unwrap();
        let parked = dir.path().join("manifests.certs-parked/etcd.yaml");
        assert_eq!(parked_path(&manifest), parked);
        // While parked, the manifest must be gone from the kubelet's directory and waiting
        // beside it.
        let watcher = {
            let (manifest, parked) = (manifest.clone(), parked.clone());
            std::thread::spawn(move || {
                let t = std::time::Instant::now();
                while t.elapsed() < Duration::from_secs(2) {
                    if !crate::sys::fs::exists(&manifest) && crate::sys::fs::exists(&parked) {
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                false
            })
        };
        let r = SystemRestarter {
            timeout: Duration::from_secs(5),
            park_for: Duration::from_millis(300),
        };
        let t = std::time::Instant::now();
        r.restart(&Restart::StaticPod(manifest.clone())).unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "parked too briefly"
        );
        assert!(watcher.join().unwrap(), "the manifest was never moved out");
        assert_eq!(std::fs::read_to_string(&manifest).unwrap(), "kind: Pod\n");
        assert!(!parked.exists());
        // Nothing was left inside the manifests directory.
        assert_eq!(std::fs::read_dir(&manifests).unwrap().count(), 1);
    }

    #[test]
    fn a_manifest_left_parked_is_put_back_by_the_next_restart() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("manifests/kube-apiserver.yaml");
        let parked = parked_path(&manifest);
        std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
        std::fs::create_dir_all(parked.parent().unwrap()).unwrap();
        std::fs::write(&parked, "kind: Pod\n").unwrap();
        let r = SystemRestarter {
            timeout: Duration::from_secs(5),
            park_for: Duration::ZERO,
        };
        r.restart(&Restart::StaticPod(manifest.clone())).unwrap();
        assert_eq!(std::fs::read_to_string(&manifest).unwrap(), "kind: Pod\n");
        assert!(!parked.exists());
    }

    #[test]
    fn parked_paths_are_siblings_of_the_manifests_directory() {
        assert_eq!(
            parked_path(Path::new("/etc/kubernetes/manifests/etcd.yaml")),
            Path::new("/etc/kubernetes/manifests.certs-parked/etcd.yaml")
        );
        assert_eq!(
            parked_path(Path::new(
                "/mnt/node/etc/kubernetes/manifests/kube-apiserver.yaml"
            )),
            Path::new("/mnt/node/etc/kubernetes/manifests.certs-parked/kube-apiserver.yaml")
        );
        assert_eq!(
            parked_path(Path::new("/etcd.yaml")),
            Path::new("/.certs-parked/etcd.yaml")
        );
    }

    #[test]
    fn a_failing_command_says_why() {
        let r = SystemRestarter {
            timeout: Duration::from_secs(5),
            park_for: Duration::ZERO,
        };
        let err = r
            .restart(&Restart::Command("echo unit not found >&2; exit 5".into()))
            .unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("exit 5") && err.contains("unit not found"),
            "{err}"
        );
    }
}
