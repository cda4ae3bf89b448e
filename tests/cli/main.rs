//! Integration tests: the real `certs` binary on copies of the committed fixtures, checked
//! against openssl and real TLS servers on loopback.

mod etcd;
mod inspect;
mod preflight;
mod reissue;
mod rollout;
mod rollout_node;
mod rollout_plan;
mod rollout_safety;
mod util;
