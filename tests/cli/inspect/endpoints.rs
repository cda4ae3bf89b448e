//! `certs inspect HOST:PORT`: live TLS endpoints on loopback (verification, names, client
//! certificates required) and an unreachable endpoint.

use super::*;
use crate::util::tls_server;

fn probe(addr: &str, extra: &[&str]) -> crate::util::Run {
    let mut args = vec![
        "inspect",
        addr,
        "-o",
        "json",
        "--now",
        NOW,
        "--timeout",
        "3s",
    ];
    args.extend_from_slice(extra);
    certs(args)
}

#[test]
fn verified_wrong_ca_name_not_covered_and_client_cert_required() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let p = |s: &str| pki.join(s);
    let etcd_ca = p("etcd/ca.crt");
    let etcd_ca = etcd_ca.to_str().unwrap();
    let cluster_ca = p("ca.crt");
    let cluster_ca = cluster_ca.to_str().unwrap();

    // etcd's server certificate covers 127.0.0.1.
    let etcd = format!(
        "https://{}",
        tls_server(&p("etcd/server.crt"), &p("etcd/server.key"), None)
    );
    let run = probe(&etcd, &["--ca", etcd_ca]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let ep = &report["endpoints"][0];
    assert_eq!(ep["trust"], "verified");
    let served = &ep["chain"][0];
    let on_disk = certs([
        "inspect",
        p("etcd/server.crt").to_str().unwrap(),
        "-o",
        "json",
    ])
    .json();
    assert_eq!(served["sha256"], on_disk["certificates"][0]["sha256"]);
    assert_eq!(
        served["sans"]["ip"],
        serde_json::json!(["10.21.22.73", "127.0.0.1", "::1"])
    );

    // The same server checked against the wrong CA (kubeadm has three).
    let run = probe(&etcd, &["--ca", cluster_ca]);
    assert_eq!(run.code, 1);
    let ep = &run.json()["endpoints"][0];
    assert_eq!(ep["trust"], "untrusted");
    assert_eq!(
        ep["chain"][0]["subject"], "CN=master1",
        "the chain is shown even untrusted"
    );

    // The apiserver certificate does not name 127.0.0.1: chains, but does not cover it.
    let api = format!(
        "https://{}",
        tls_server(&p("apiserver.crt"), &p("apiserver.key"), None)
    );
    let run = probe(&api, &["--ca", cluster_ca]);
    assert_eq!(run.code, 1);
    let ep = &run.json()["endpoints"][0];
    assert_eq!(ep["trust"], "name-not-covered");
    assert!(
        ep["detail"].as_str().unwrap().contains("127.0.0.1"),
        "{}",
        ep["detail"]
    );

    // etcd demanding a client certificate: the served chain is still captured.
    let mtls = format!(
        "https://{}",
        tls_server(
            &p("etcd/server.crt"),
            &p("etcd/server.key"),
            Some(&p("etcd/ca.crt"))
        )
    );
    let run = probe(&mtls, &["--ca", etcd_ca]);
    let report = run.json();
    let ep = &report["endpoints"][0];
    assert_eq!(ep["chain"][0]["subject"], "CN=master1", "{ep}");
    assert!(ep["handshake_error"].is_string(), "{ep}");
    assert_eq!(ep["trust"], "verified");

    // --insecure shows the chain without trust; the table says so.
    let run = certs(["inspect", &api, "--insecure", "--timeout", "3s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("not-checked"), "{}", run.stdout);
}

#[test]
fn unreachable_endpoint_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let run = certs([
        "inspect",
        &format!("https://{addr}"),
        "--insecure",
        "--timeout",
        "2s",
    ]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains(&addr.to_string()), "{}", run.stderr);
}
