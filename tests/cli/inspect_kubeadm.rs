//! `certs inspect -o kubeadm` / `-o kubeadm-json`: what `kubeadm certs check-expiration` prints
//! on the same node.
//!
//! The expected tables are written out from kubeadm's format (cmd/kubeadm/app/cmd/certs.go: a
//! `text/tabwriter.NewWriter(out, 10, 4, 3, ' ', 0)`, rows `"%s\t%s\t%s\t%s\t%-8v"`, missing
//! rows `"!MISSING! %s\t\t\t\t"`, dates `Jan 02, 2006 15:04 MST`, residual time
//! `duration.ShortHumanDuration`), so trailing blanks are part of them: `no` is padded to eight
//! columns and a missing row pads its empty cells. The fixture's leaves expire
//! 2034-12-31T00:00:00Z, its CAs 2035-01-01T00:00:00Z.

use std::path::Path;

use serde_json::Value;

use crate::util::{certs, fixture};

fn kubeadm(root: &Path, output: &str, now: &str) -> String {
    let run = certs([
        "inspect",
        "--root",
        root.to_str().unwrap(),
        "-o",
        output,
        "--now",
        now,
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
    run.stdout
}

#[test]
fn kubeadm_table_on_the_kubeadm_fixture() {
    let node = fixture("kubeadm");
    let want = concat!(
        "CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED\n",
        "admin.conf                 Dec 31, 2034 00:00 UTC   213d            ca                      no      \n",
        "apiserver                  Dec 31, 2034 00:00 UTC   213d            ca                      no      \n",
        "apiserver-etcd-client      Dec 31, 2034 00:00 UTC   213d            etcd-ca                 no      \n",
        "apiserver-kubelet-client   Dec 31, 2034 00:00 UTC   213d            ca                      no      \n",
        "controller-manager.conf    Dec 31, 2034 00:00 UTC   213d            ca                      no      \n",
        "etcd-healthcheck-client    Dec 31, 2034 00:00 UTC   213d            etcd-ca                 no      \n",
        "etcd-peer                  Dec 31, 2034 00:00 UTC   213d            etcd-ca                 no      \n",
        "etcd-server                Dec 31, 2034 00:00 UTC   213d            etcd-ca                 no      \n",
        "front-proxy-client         Dec 31, 2034 00:00 UTC   213d            front-proxy-ca          no      \n",
        "scheduler.conf             Dec 31, 2034 00:00 UTC   213d            ca                      no      \n",
        "super-admin.conf           Dec 31, 2034 00:00 UTC   213d            ca                      no      \n",
        "\n",
        "CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED\n",
        "ca                      Jan 01, 2035 00:00 UTC   214d            no      \n",
        "etcd-ca                 Jan 01, 2035 00:00 UTC   214d            no      \n",
        "front-proxy-ca          Jan 01, 2035 00:00 UTC   214d            no      \n",
    );
    assert_eq!(
        kubeadm(node.path(), "kubeadm", "2034-06-01T00:00:00Z"),
        want
    );
}

/// Absent files are `!MISSING!` rows (and widen the first column), a CA without its key is
/// externally managed, and so is everything it signs.
#[test]
fn missing_files_and_an_external_ca() {
    let node = fixture("kubeadm");
    let k = node.path().join("etc/kubernetes");
    std::fs::remove_file(k.join("pki/etcd/healthcheck-client.crt")).unwrap();
    std::fs::remove_file(k.join("super-admin.conf")).unwrap();
    std::fs::remove_file(k.join("pki/front-proxy-ca.key")).unwrap();
    let want = concat!(
        "CERTIFICATE                         EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED\n",
        "admin.conf                          Dec 31, 2034 00:00 UTC   12h             ca                      no      \n",
        "apiserver                           Dec 31, 2034 00:00 UTC   12h             ca                      no      \n",
        "apiserver-etcd-client               Dec 31, 2034 00:00 UTC   12h             etcd-ca                 no      \n",
        "apiserver-kubelet-client            Dec 31, 2034 00:00 UTC   12h             ca                      no      \n",
        "controller-manager.conf             Dec 31, 2034 00:00 UTC   12h             ca                      no      \n",
        "!MISSING! etcd-healthcheck-client                                                                    \n",
        "etcd-peer                           Dec 31, 2034 00:00 UTC   12h             etcd-ca                 no      \n",
        "etcd-server                         Dec 31, 2034 00:00 UTC   12h             etcd-ca                 no      \n",
        "front-proxy-client                  Dec 31, 2034 00:00 UTC   12h             front-proxy-ca          yes     \n",
        "scheduler.conf                      Dec 31, 2034 00:00 UTC   12h             ca                      no      \n",
        "!MISSING! super-admin.conf                                                                           \n",
        "\n",
        "CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED\n",
        "ca                      Jan 01, 2035 00:00 UTC   1d              no      \n",
        "etcd-ca                 Jan 01, 2035 00:00 UTC   1d              no      \n",
        "front-proxy-ca          Jan 01, 2035 00:00 UTC   1d              yes     \n",
    );
    assert_eq!(
        kubeadm(node.path(), "kubeadm", "2034-12-30T12:00:00Z"),
        want
    );
}

/// apimachinery's ShortHumanDuration boundaries (its TestShortHumanDurationBoundaries, at the
/// whole seconds kubeadm keeps), read off the apiserver row: `now` is placed that far before the
/// certificate's notAfter.
#[test]
fn residual_time_as_kubeadm_prints_it() {
    let node = fixture("kubeadm");
    let not_after = time::macros::datetime!(2034-12-31 00:00:00 UTC);
    let (second, minute, hour, day) = (1, 60, 3600, 86400);
    let cases: &[(i64, &str)] = &[
        (-2 * second, "<invalid>"),
        (-second, "0s"),
        (0, "0s"),
        (second, "1s"),
        (minute - second, "59s"),
        (minute, "1m"),
        (2 * minute - second, "1m"),
        (hour - second, "59m"),
        (hour, "1h"),
        (2 * hour - second, "1h"),
        (day - second, "23h"),
        (day, "1d"),
        (30 * hour, "1d"),
        (2 * day - second, "1d"),
        (365 * day - second, "364d"),
        (365 * day, "1y"),
        (395 * day, "1y"),
        (2 * 365 * day - second, "1y"),
        (2 * 365 * day, "2y"),
    ];
    for &(residual, want) in cases {
        let now = not_after - time::Duration::seconds(residual);
        let now = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let table = kubeadm(node.path(), "kubeadm", &now);
        let row = table
            .lines()
            .find(|l| l.starts_with("apiserver "))
            .expect("an apiserver row");
        let cells: Vec<&str> = row
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cells[2], want, "residual {residual}s at {now}: {row:?}");
        let doc: Value = serde_json::from_str(&kubeadm(node.path(), "kubeadm-json", &now)).unwrap();
        assert_eq!(doc["certificates"][1]["name"], "apiserver");
        assert_eq!(doc["certificates"][1]["residualTime"], residual);
    }
}

#[test]
fn kubeadm_json_is_the_certificate_expiration_info_document() {
    let node = fixture("kubeadm");
    std::fs::remove_file(node.path().join("etc/kubernetes/super-admin.conf")).unwrap();
    let text = kubeadm(node.path(), "kubeadm-json", "2034-06-01T00:00:00Z");
    // kubectl's JSON printer: four-space indentation, TypeMeta first, a final newline.
    let head = concat!(
        "{\n",
        "    \"kind\": \"CertificateExpirationInfo\",\n",
        "    \"apiVersion\": \"output.kubeadm.k8s.io/v1alpha3\",\n",
        "    \"certificates\": [\n",
        "        {\n",
        "            \"name\": \"admin.conf\",\n",
        "            \"expirationDate\": \"2034-12-31T00:00:00Z\",\n",
        "            \"residualTime\": 18403200,\n",
        "            \"externallyManaged\": false,\n",
        "            \"caName\": \"ca\",\n",
        "            \"missing\": false\n",
        "        },\n",
    );
    assert!(text.starts_with(head), "{text}");
    assert!(text.ends_with("    ]\n}\n"), "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    let names = |list: &str| -> Vec<String> {
        doc[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names("certificates"),
        [
            "admin.conf",
            "apiserver",
            "apiserver-etcd-client",
            "apiserver-kubelet-client",
            "controller-manager.conf",
            "etcd-healthcheck-client",
            "etcd-peer",
            "etcd-server",
            "front-proxy-client",
            "scheduler.conf",
            "super-admin.conf",
        ]
    );
    assert_eq!(
        names("certificateAuthorities"),
        ["ca", "etcd-ca", "front-proxy-ca"]
    );
    // A missing certificate: kubeadm sets only its name and `missing` (a zero metav1.Time is
    // null, caName is omitempty).
    assert_eq!(
        doc["certificates"][10],
        serde_json::json!({"name": "super-admin.conf", "expirationDate": null, "residualTime": 0,
                           "externallyManaged": false, "missing": true})
    );
    assert_eq!(doc["certificates"][2]["caName"], "etcd-ca");
    assert_eq!(doc["certificates"][8]["caName"], "front-proxy-ca");
    // CAs have no caName.
    assert_eq!(
        doc["certificateAuthorities"][0],
        serde_json::json!({"name": "ca", "expirationDate": "2035-01-01T00:00:00Z",
                           "residualTime": 18489600, "externallyManaged": false, "missing": false})
    );
}

/// kubespray runs kubeadm with `certificatesDir: /etc/kubernetes/ssl` and an external (host)
/// etcd: kubeadm then tracks no etcd certificate and no etcd CA, and this node has no
/// controller-manager, scheduler or super-admin kubeconfig.
#[test]
fn kubespray_layout_has_external_etcd() {
    let node = fixture("kubespray");
    let table = kubeadm(node.path(), "kubeadm", "2034-06-01T00:00:00Z");
    let first: Vec<String> = table
        .lines()
        .map(|l| l.split("   ").next().unwrap().trim_end().to_string())
        .collect();
    assert_eq!(
        first,
        [
            "CERTIFICATE",
            "admin.conf",
            "apiserver",
            "apiserver-kubelet-client",
            "!MISSING! controller-manager.conf",
            "front-proxy-client",
            "!MISSING! scheduler.conf",
            "!MISSING! super-admin.conf",
            "",
            "CERTIFICATE AUTHORITY",
            "ca",
            "front-proxy-ca",
        ],
        "{table}"
    );
    assert!(table.contains(
        "apiserver                           Dec 31, 2034 00:00 UTC   213d            ca                      no      \n"
    ));
}

/// A backup handed over as a PATH (no --root): kubeadm's directories are found from the files.
#[test]
fn a_copied_etc_kubernetes_given_as_a_path() {
    let node = fixture("kubeadm");
    let dir = node.path().join("etc/kubernetes");
    let run = certs([
        "inspect",
        dir.to_str().unwrap(),
        "-o",
        "kubeadm",
        "--now",
        "2034-06-01T00:00:00Z",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(!run.stdout.contains("MISSING"), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 17);
}

#[test]
fn kubeadm_outputs_refuse_endpoints() {
    let run = certs([
        "inspect",
        "https://127.0.0.1:6443",
        "--insecure",
        "-o",
        "kubeadm",
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("-o kubeadm"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}
