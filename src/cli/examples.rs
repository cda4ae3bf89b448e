//! The Examples sections of `--help` (clap's `after_help`), one per subcommand; `certs man`
//! prints them as the EXAMPLES section of each page. Every line runs as shown on a node (or, with
//! `--root fixtures/…`, from a checkout).

pub const CERTS: &str = "\
Examples:
  certs inspect                                   # every certificate of this node
  certs inspect --warn-within 30d >/dev/null      # exit 1 if anything expires within 30 days
  certs preflight --vip 10.21.22.100              # before adding a VIP: what would break
  certs reissue /etc/kubernetes/pki/apiserver.crt --add-san 10.21.22.100 --out /root/vip
  certs rollout apply /root/vip                   # install it, one component at a time
  certs completions bash > /etc/bash_completion.d/certs
  certs man inspect | man -l -";

pub const INSPECT: &str = "\
Examples:
  # every certificate, key and kubeconfig of this node (the standard locations)
  certs inspect
  # a backup or a mounted disk, judged as of a date
  certs inspect --root /mnt/node1 --now 2027-01-01T00:00:00Z
  # for cron: exit 1 if anything expires within 30 days
  certs inspect --warn-within 30d -o json > /var/lib/certs/inspect.json
  # the chain a live apiserver serves, checked against the cluster CA
  certs inspect https://10.21.22.73:6443 --ca /etc/kubernetes/pki/ca.crt
  # kubeadm's own check-expiration table, and metrics for node_exporter
  certs inspect -o kubeadm
  certs inspect -o prometheus --textfile /var/lib/node_exporter/textfile_collector/certs.prom

Tables fit the terminal (or COLUMNS): long paths lose their leading directories and the
least useful columns go first; -o wide shows every column at full width. Paths are the
ones JSON reports: with --root, the path on this machine (DIR/etc/kubernetes/…).";

pub const SPEC: &str = "\
Examples:
  # the csr.json cfssl would need to issue this certificate again
  certs spec /etc/kubernetes/ssl/kubernetes.pem
  # the same with one master's address dropped and a VIP added
  certs spec /etc/kubernetes/ssl/kubernetes.pem --drop-san 172.72.0.96 --add-san 172.72.0.100
  # a starting point for a new etcd peer certificate
  certs spec --template etcd-peer --add-san 172.72.0.98";

pub const REISSUE: &str = "\
Examples:
  # the apiserver certificate with a VIP added, into a bundle for `certs rollout`
  certs reissue /etc/kubernetes/pki/apiserver.crt --add-san 10.21.22.100 --out /root/vip
  # binary cluster: two retired masters dropped from the apiserver and etcd certificates
  certs reissue /etc/kubernetes/ssl/kubernetes.pem /etc/kubernetes/ssl/etcd.pem \\
      --drop-san 172.72.0.96 --drop-san 172.72.0.97 --out /root/retire
  # what would be issued, writing nothing
  certs reissue /etc/kubernetes/pki/apiserver.crt --add-san lb.example.com --dry-run";

pub const PREFLIGHT: &str = "\
Examples:
  # before putting the apiservers behind a VIP
  certs preflight --vip 10.21.22.100
  # before retiring two of three masters, with etcd asked for its members
  certs preflight --retire 172.72.0.96 --retire 172.72.0.97 --keep 172.72.0.95 \\
      --etcd https://127.0.0.1:2379
  # a copy of a node's files, nothing probed over the network
  certs preflight --root /mnt/node1 --vip 10.21.22.100 --offline -o json

Exit codes: 0 nothing fails, 1 a check fails, 2 usage or input error. On a terminal (or with
COLUMNS) messages and fixes wrap to its width; piped, each stays on one line.";

pub const ROLLOUT: &str = "\
Examples:
  certs rollout plan /root/vip            # what would happen, proved possible; nothing changes
  certs rollout apply /root/vip           # back up, swap, restart one at a time behind gates
  certs rollout status                    # where the recorded rollout stands
  certs rollout resume                    # finish an interrupted one
  certs rollout rollback                  # or undo it";

pub const ROLLOUT_PLAN: &str = "\
Examples:
  certs rollout plan /root/vip
  # a node whose etcd is probed elsewhere, as JSON
  certs rollout plan /root/vip --health etcd=https://10.21.22.73:2379/health -o json
  # a copy of the node's files
  certs rollout plan /root/vip --root /mnt/node1 --profile kubeadm";

pub const ROLLOUT_APPLY: &str = "\
Examples:
  certs rollout apply /root/vip
  # restart the apiserver through a command; slower health gates
  certs rollout apply /root/vip --restart-cmd kube-apiserver='systemctl restart kube-apiserver' \\
      --health-timeout 300s
  # one JSON event per line, for automation
  certs rollout apply /root/vip -o json";

pub const ROLLOUT_STATUS: &str = "\
Examples:
  certs rollout status
  certs rollout status --state-dir /var/lib/certs -o json";

pub const ROLLOUT_RESUME: &str = "\
Examples:
  certs rollout resume
  certs rollout resume --health-timeout 300s -o json";

pub const ROLLOUT_ROLLBACK: &str = "\
Examples:
  # undo the recorded rollout from its backup
  certs rollout rollback
  # from a backup named explicitly
  certs rollout rollback /var/lib/certs/backups/20260601T000000Z-4242";

pub const COMPLETIONS: &str = "\
Examples:
  certs completions bash > /etc/bash_completion.d/certs
  certs completions zsh > \"${fpath[1]}/_certs\"
  certs completions fish > ~/.config/fish/completions/certs.fish";

pub const MAN: &str = "\
Examples:
  certs man | man -l -                    # read certs(1)
  certs man rollout apply | man -l -      # certs-rollout-apply(1)
  certs man inspect > /usr/local/share/man/man1/certs-inspect.1";

pub const RENEW: &str = "\
Examples:
  # every leaf expiring within 30 days (or expired), reissued as it is, into one bundle
  certs renew --out /root/renewed
  certs rollout apply /root/renewed
  # the kubeadm year-end chore, a month ahead, as JSON for automation
  certs renew --within 60d --out /root/renewed -o json
  # only etcd's certificates, with the CA named
  certs renew /etc/kubernetes/pki/etcd --ca /etc/kubernetes/pki/etcd/ca.crt \\
      --ca-key /etc/kubernetes/pki/etcd/ca.key --out /root/etcd";

pub const KUBECONFIG: &str = "\
Examples:
  certs kubeconfig set-server https://10.21.22.100:6443 /etc/kubernetes/admin.conf --out /root/vip
  certs kubeconfig set-ca /root/ca-bundle.pem /etc/kubernetes/*.conf --out /root/ca
  certs kubeconfig renew /etc/kubernetes/admin.conf --out /root/admin";

pub const KUBECONFIG_SET_SERVER: &str = "\
Examples:
  # a VIP add: the apiserver certificate first, then the kubeconfigs into the same bundle
  certs reissue /etc/kubernetes/pki/apiserver.crt --add-san 10.21.22.100 --out /root/vip
  certs kubeconfig set-server https://10.21.22.100:6443 \\
      /etc/kubernetes/{admin,super-admin,kubelet}.conf --into /root/vip
  # kubeasz: one cluster of several, on its external VIP and port
  certs kubeconfig set-server https://192.168.1.40:8443 /root/.kube/config --cluster cluster1 \\
      --out /root/vip";

pub const KUBECONFIG_SET_CA: &str = "\
Examples:
  # during a CA rotation: trust the old and the new CA
  cat /etc/kubernetes/pki/ca.crt /root/new-ca.crt > /root/ca-bundle.pem
  certs kubeconfig set-ca /root/ca-bundle.pem /etc/kubernetes/admin.conf \\
      /etc/kubernetes/controller-manager.conf /etc/kubernetes/scheduler.conf --out /root/ca";

pub const KUBECONFIG_RENEW: &str = "\
Examples:
  certs kubeconfig renew /etc/kubernetes/admin.conf /etc/kubernetes/scheduler.conf --out /root/kc
  # the kubelet's client certificate has no CA beside it: name the cluster CA
  certs kubeconfig renew /etc/kubernetes/kubelet.conf --ca /etc/kubernetes/pki/ca.crt \\
      --ca-key /etc/kubernetes/pki/ca.key --into /root/kc";

pub const CLUSTER_EXPORT: &str = "\
Examples:
  # what the playbook's play 1 runs on each node (no private key leaves it)
  certs cluster export > /tmp/node1-export.json
  # a node mounted elsewhere
  certs cluster export --root /mnt/node1 > node1.json";

pub const CLUSTER_REISSUE: &str = "\
Examples:
  # what play 2 runs on the CA host: node2's bundle for retiring etcd3
  certs cluster reissue --export node2.json --scratch /tmp/node2 --out /tmp/node2-bundle \\
      --retire etcd3 --no-etcd-membership";
