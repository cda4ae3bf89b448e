//! What a certificate is for: from its file name and layout first, then from its CN and EKU.
//!
//! Names follow the layouts in FORMATS.md: kubeadm (`pki/apiserver.crt`, `pki/etcd/server.crt`),
//! kubespray host etcd (`member-<host>.pem`, `admin-<host>.pem`, `node-<host>.pem`) and
//! binary/kubeasz cfssl clusters (`kubernetes.pem`, `etcd.pem`, `admin.pem` …).

use std::path::Path;

use serde::Serialize;

use super::cert::CertInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Ca,
    EtcdCa,
    FrontProxyCa,
    Apiserver,
    ApiserverKubeletClient,
    ApiserverEtcdClient,
    FrontProxyClient,
    EtcdServer,
    EtcdPeer,
    EtcdClient,
    Kubelet,
    Admin,
    ControllerManager,
    Scheduler,
    KubeProxy,
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ca => "ca",
            Role::EtcdCa => "etcd-ca",
            Role::FrontProxyCa => "front-proxy-ca",
            Role::Apiserver => "apiserver",
            Role::ApiserverKubeletClient => "apiserver-kubelet-client",
            Role::ApiserverEtcdClient => "apiserver-etcd-client",
            Role::FrontProxyClient => "front-proxy-client",
            Role::EtcdServer => "etcd-server",
            Role::EtcdPeer => "etcd-peer",
            Role::EtcdClient => "etcd-client",
            Role::Kubelet => "kubelet",
            Role::Admin => "admin",
            Role::ControllerManager => "controller-manager",
            Role::Scheduler => "scheduler",
            Role::KubeProxy => "kube-proxy",
            Role::Unknown => "unknown",
        }
    }

    pub fn is_ca(self) -> bool {
        matches!(self, Role::Ca | Role::EtcdCa | Role::FrontProxyCa)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role of `cert`, found at `path` (a kubeconfig's path for an embedded certificate).
pub fn detect(path: &Path, cert: &CertInfo) -> Role {
    // `pki/etcd/`, `/etc/ssl/etcd/ssl/`, `/etc/etcd/ssl/`: look at the nearest two directories
    // only, so that a scan root that happens to contain "etcd" changes nothing.
    let in_etcd_dir = path.parent().is_some_and(|dir| {
        dir.components()
            .rev()
            .take(2)
            .any(|c| c.as_os_str().to_str().is_some_and(|s| s.contains("etcd")))
    });
    if cert.is_ca {
        return ca_role(path, cert, in_etcd_dir);
    }
    by_name(path, in_etcd_dir).unwrap_or_else(|| by_subject(cert))
}

fn ca_role(path: &Path, cert: &CertInfo, in_etcd_dir: bool) -> Role {
    let stem = stem(path);
    let cn = cert.common_name.as_deref().unwrap_or("");
    if stem.starts_with("kubelet") {
        // The throwaway CA kubelet writes second in its self-signed `kubelet.crt`.
        Role::Kubelet
    } else if stem.starts_with("front-proxy") || cn.starts_with("front-proxy") {
        Role::FrontProxyCa
    } else if stem.starts_with("etcd") || cn.contains("etcd") || (in_etcd_dir && stem == "ca") {
        Role::EtcdCa
    } else {
        Role::Ca
    }
}

/// `apiserver.crt` → `apiserver`, `etcd-key.pem` → `etcd`, `admin.conf` → `admin`.
fn stem(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let base = name.split('.').next().unwrap_or(name);
    base.strip_suffix("-key").unwrap_or(base).to_string()
}

fn by_name(path: &Path, in_etcd_dir: bool) -> Option<Role> {
    let stem = stem(path);
    let role = match stem.as_str() {
        "apiserver" | "kubernetes" | "kube-apiserver" => Role::Apiserver,
        "apiserver-kubelet-client" => Role::ApiserverKubeletClient,
        "apiserver-etcd-client" => Role::ApiserverEtcdClient,
        "front-proxy-client" | "aggregator-proxy" | "proxy-client" => Role::FrontProxyClient,
        "server" if in_etcd_dir => Role::EtcdServer,
        "peer" if in_etcd_dir => Role::EtcdPeer,
        "healthcheck-client" if in_etcd_dir => Role::EtcdClient,
        "etcd" | "etcd-server" => Role::EtcdServer,
        "etcd-peer" => Role::EtcdPeer,
        "etcd-client" | "etcd-healthcheck-client" => Role::EtcdClient,
        "admin" | "super-admin" if in_etcd_dir => Role::EtcdClient,
        "admin" | "super-admin" | "kubectl" => Role::Admin,
        "controller-manager" | "kube-controller-manager" => Role::ControllerManager,
        "scheduler" | "kube-scheduler" => Role::Scheduler,
        "kube-proxy" | "proxy" => Role::KubeProxy,
        "kubelet" | "kubelet-client-current" | "kubelet-client" | "kubelet-server-current" => {
            Role::Kubelet
        }
        s if s.starts_with("member-") => Role::EtcdServer,
        s if s.starts_with("admin-") && in_etcd_dir => Role::EtcdClient,
        s if s.starts_with("node-") && in_etcd_dir => Role::EtcdClient,
        s if s.starts_with("kubelet") => Role::Kubelet,
        _ => return None,
    };
    Some(role)
}

fn by_subject(cert: &CertInfo) -> Role {
    let cn = cert.common_name.as_deref().unwrap_or("");
    let org = |o: &str| cert.organizations.iter().any(|x| x == o);
    match cn {
        "kube-apiserver" => Role::Apiserver,
        "kube-apiserver-kubelet-client" => Role::ApiserverKubeletClient,
        "kube-apiserver-etcd-client" => Role::ApiserverEtcdClient,
        "front-proxy-client" | "aggregator" => Role::FrontProxyClient,
        "kube-etcd-healthcheck-client" => Role::EtcdClient,
        "system:kube-controller-manager" => Role::ControllerManager,
        "system:kube-scheduler" => Role::Scheduler,
        "system:kube-proxy" => Role::KubeProxy,
        "kubernetes" if cert.serves_tls() => Role::Apiserver,
        c if c.starts_with("system:node:") => Role::Kubelet,
        c if c.starts_with("etcd-member-") => Role::EtcdServer,
        c if c.starts_with("etcd-admin-") || c.starts_with("etcd-node-") => Role::EtcdClient,
        _ if org("system:masters") || org("kubeadm:cluster-admins") => Role::Admin,
        _ => Role::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(cn: &str, orgs: &[&str], server: bool) -> CertInfo {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(vec![]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        for o in orgs {
            p.distinguished_name
                .push(rcgen::DnType::OrganizationName, *o);
        }
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        if server {
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        }
        CertInfo::from_der(p.self_signed(&key).unwrap().der()).unwrap()
    }

    #[test]
    fn names_first_then_subject() {
        let any = leaf("x", &[], false);
        let table = [
            ("/etc/kubernetes/pki/apiserver.crt", Role::Apiserver),
            ("/etc/kubernetes/pki/etcd/server.crt", Role::EtcdServer),
            ("/etc/kubernetes/pki/etcd/peer.crt", Role::EtcdPeer),
            (
                "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
                Role::EtcdClient,
            ),
            ("/etc/ssl/etcd/ssl/member-node1.pem", Role::EtcdServer),
            ("/etc/ssl/etcd/ssl/admin-node1.pem", Role::EtcdClient),
            ("/etc/ssl/etcd/ssl/node-node2.pem", Role::EtcdClient),
            ("/etc/kubernetes/ssl/kubernetes.pem", Role::Apiserver),
            ("/etc/kubernetes/ssl/etcd.pem", Role::EtcdServer),
            ("/etc/kubernetes/ssl/admin.pem", Role::Admin),
            ("/etc/kubernetes/admin.conf", Role::Admin),
            ("/etc/kubernetes/scheduler.conf", Role::Scheduler),
            (
                "/var/lib/kubelet/pki/kubelet-client-current.pem",
                Role::Kubelet,
            ),
        ];
        for (path, role) in table {
            assert_eq!(detect(Path::new(path), &any), role, "{path}");
        }
        let by_cn = [
            (leaf("system:kube-proxy", &[], false), Role::KubeProxy),
            (
                leaf("system:node:m1", &["system:nodes"], false),
                Role::Kubelet,
            ),
            (leaf("kubernetes", &["k8s"], true), Role::Apiserver),
            (leaf("someone", &["system:masters"], false), Role::Admin),
            (leaf("someone", &[], false), Role::Unknown),
        ];
        for (cert, role) in by_cn {
            assert_eq!(detect(Path::new("/tmp/x.pem"), &cert), role);
        }
    }
}
