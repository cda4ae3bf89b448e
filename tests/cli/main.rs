//! Integration tests: the real `certs` binary on copies of the committed fixtures, checked
//! against openssl and real TLS servers on loopback.
#![allow(clippy::disallowed_methods)] // a test/generator program: std::fs and processes directly

mod change;
mod cluster;
mod etcd;
mod inspect;
mod inspect_kubeadm;
mod inspect_prometheus;
mod issue;
mod kubeconfig;
mod preflight;
mod reissue;
mod renew;
mod rollout;
mod rollout_hardening;
mod rollout_membership;
mod rollout_node;
mod rollout_plan;
mod rollout_safety;
mod rotate_ca;
mod terminal;
mod util;
mod walkthrough;
