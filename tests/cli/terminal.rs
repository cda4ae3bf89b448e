//! The terminal: tables that fit 80 columns, paths as JSON has them, kubeadm's residual time,
//! help with examples for every subcommand and every flag, completions and man pages, a
//! closed pipe that ends the run quietly, and a progress line only on a terminal.

use std::process::{Command, Stdio};

use clap::CommandFactory;

use crate::util::{certs, certs_env, fixture, s_ref as s, tls_server, NOW};

/// Lines wider than `width` characters (not bytes: `…` is one column).
fn too_wide(text: &str, width: usize) -> Vec<&str> {
    text.lines().filter(|l| l.chars().count() > width).collect()
}

fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

#[test]
fn inspect_tables_fit_80_columns() {
    for name in ["kubeadm", "kubespray", "binary", "kubeasz-ecdsa", "broken"] {
        let dir = fixture(name);
        let root = s(dir.path());
        let run = certs_env(
            ["inspect", "--root", root, "--now", NOW],
            &[("COLUMNS", "80")],
        );
        assert!(run.code == 0 || run.code == 1, "{name}: {}", run.stderr);
        assert!(run.stdout.lines().count() > 3, "{name}: {}", run.stdout);
        assert_eq!(too_wide(&run.stdout, 80), Vec::<&str>::new(), "{name}");
        // The residual time always stays; it is what the table is for.
        assert!(run.stdout.starts_with("CERTIFICATE "), "{}", run.stdout);
        assert!(run.stdout.contains("RESIDUAL TIME"), "{}", run.stdout);

        // Not a terminal and no COLUMNS: every column at full width, as before.
        let full = certs(["inspect", "--root", root, "--now", NOW]);
        assert!(widest(&full.stdout) > 80, "{name}: {}", full.stdout);
        assert!(full.stdout.contains("SANS"));
        // -o wide ignores the width: it is there to show everything.
        let wide = certs_env(
            ["inspect", "--root", root, "--now", NOW, "-o", "wide"],
            &[("COLUMNS", "80")],
        );
        assert!(widest(&wide.stdout) > 80, "{name}");
        assert!(wide.stdout.contains("SHA256"));
    }
}

/// Narrower still, and the findings table of a broken tree: every line fits, paths keep their
/// file name, findings keep their whole message (under the row).
#[test]
fn narrow_tables_shorten_paths_from_the_left() {
    let dir = fixture("broken");
    let root = s(dir.path());
    for width in [60, 80, 100, 132] {
        let run = certs_env(
            ["inspect", "--root", root, "--now", NOW],
            &[("COLUMNS", width.to_string())],
        );
        assert_eq!(
            too_wide(&run.stdout, width),
            Vec::<&str>::new(),
            "{width}:\n{}",
            run.stdout
        );
    }
    let run = certs_env(
        ["inspect", "--root", root, "--now", NOW],
        &[("COLUMNS", "80")],
    );
    let expired = run
        .stdout
        .lines()
        .find(|l| l.contains("expired.crt"))
        .expect("a row for expired.crt");
    assert!(expired.starts_with("…/"), "{}", run.stdout);
    assert!(expired.contains("/pki/expired.crt "), "{}", run.stdout);
    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words(&run.stdout).contains(
            "encrypted private key: its certificate cannot be matched without the passphrase"
        ),
        "{}",
        run.stdout
    );
}

/// With --root, tables show the paths JSON shows: the host's (ROOT/etc/kubernetes/…).
#[test]
fn table_paths_are_json_paths() {
    let dir = fixture("kubeadm");
    let root = s(dir.path());
    let table = certs(["inspect", "--root", root, "--now", NOW]);
    let json = certs(["inspect", "--root", root, "--now", NOW, "-o", "json"]).json();
    let first_cells: Vec<&str> = table
        .stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split("   ").next().unwrap())
        .collect();
    let paths: Vec<String> = json["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["is_ca"] == false)
        .map(|c| {
            let path = c["path"].as_str().unwrap();
            match c["embedded"].as_str() {
                Some(e) => format!("{path}#{}", e.split('.').next().unwrap()),
                None => path.to_string(),
            }
        })
        .collect();
    assert_eq!(first_cells, paths);
    assert!(first_cells.contains(&format!("{root}/etc/kubernetes/pki/apiserver.crt").as_str()));
}

/// The default table's RESIDUAL TIME is kubeadm's: `1d` at 30 hours, `1y` at 395 days.
#[test]
fn residual_time_is_kubeadms() {
    let dir = fixture("kubeadm");
    let apiserver = dir.path().join("etc/kubernetes/pki/apiserver.crt");
    // notAfter 2034-12-31T00:00:00Z
    for (now, want) in [
        ("2034-12-29T18:00:00Z", "1d"),
        ("2033-12-01T00:00:00Z", "1y"),
        ("2034-12-30T23:59:30Z", "30s"),
        ("2034-12-31T00:00:01Z", "0s"),
        ("2035-01-01T00:00:00Z", "<invalid>"),
    ] {
        let run = certs(["inspect", s(&apiserver), "--now", now]);
        let row = run.stdout.lines().nth(1).unwrap();
        let cells: Vec<&str> = row
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cells[3], want, "{now}: {row}");
    }
}

#[test]
fn preflight_fits_80_columns_and_stays_whole_when_piped() {
    let dir = fixture("binary");
    let args = [
        "preflight",
        "--root",
        s(dir.path()),
        "--retire",
        "172.72.0.96",
        "--retire",
        "172.72.0.97",
        "--keep",
        "172.72.0.95",
        "--offline",
        "--now",
        NOW,
    ];
    let narrow = certs_env(args, &[("COLUMNS", "80")]);
    assert!(narrow.code == 0 || narrow.code == 1, "{}", narrow.stderr);
    assert_eq!(too_wide(&narrow.stdout, 80), Vec::<&str>::new());
    let piped = certs(args);
    assert!(widest(&piped.stdout) > 80);
    // The same words either way: only the line breaks differ (numbers aside: free space).
    let words = |t: &str| {
        t.split_whitespace()
            .filter(|w| {
                !w.trim_start_matches('(')
                    .chars()
                    .all(|c| c.is_ascii_digit())
            })
            .collect::<String>()
    };
    assert_eq!(words(&narrow.stdout), words(&piped.stdout));
    // Every check keeps its status column.
    let checks = piped.stdout.lines().filter(|l| !l.starts_with(' ')).count();
    let starts = narrow
        .stdout
        .lines()
        .filter(|l| !l.starts_with(' '))
        .count();
    assert_eq!(checks, starts);
}

/// A real terminal (a pty from util-linux's `script`) 80 columns wide, COLUMNS unset: the width
/// is read from the terminal.
#[test]
fn a_real_80_column_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux, Debian's bsdutils) is needed for the pty test");
    }
    let dir = fixture("kubeadm");
    let cmd = format!(
        "stty cols 80 rows 40; exec {} inspect --root {} --now {NOW}",
        env!("CARGO_BIN_EXE_certs"),
        s(dir.path())
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    assert!(text.contains("RESIDUAL TIME"), "{text}");
    assert!(text.contains("…/"), "paths shortened on a terminal: {text}");
    assert_eq!(too_wide(&text, 80), Vec::<&str>::new(), "{text}");
}

/// `certs spec X | head -1`, literally, and then with a pipe already closed so that every write
/// fails with EPIPE: exit 0, nothing on stderr, never a panic.
#[test]
fn broken_pipe_ends_quietly() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let apiserver = pki.join("apiserver.crt");
    let shell = Command::new("bash")
        .args([
            "-c",
            &format!(
                "set -o pipefail; {} spec {} | head -1",
                env!("CARGO_BIN_EXE_certs"),
                s(&apiserver)
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(shell.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&shell.stdout), "{\n");
    assert_eq!(String::from_utf8_lossy(&shell.stderr), "");

    let root = s(dir.path());
    let runs: Vec<Vec<&str>> = vec![
        vec!["spec", s(&apiserver)],
        vec!["spec", "--template", "etcd"],
        vec!["inspect", "--root", root],
        vec!["inspect", "--root", root, "-o", "json"],
        vec!["inspect", "--root", root, "-o", "wide"],
        vec!["inspect", "--root", root, "-o", "kubeadm"],
        vec!["inspect", "--root", root, "-o", "prometheus"],
        vec!["inspect", "--root", root, "--warn-within", "3650d"],
        vec![
            "preflight",
            "--root",
            root,
            "--vip",
            "10.21.22.101",
            "--offline",
        ],
        vec!["completions", "bash"],
        vec!["man"],
        vec!["--help"],
        vec!["inspect", "--help"],
    ];
    for args in runs {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_certs"))
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

/// Endpoints alone: no certificate files, so no table header without rows.
#[test]
fn inspect_url_alone_prints_no_empty_table() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let url = format!(
        "https://{}",
        tls_server(
            &pki.join("etcd/server.crt"),
            &pki.join("etcd/server.key"),
            None
        )
    );
    let run = certs([
        "inspect",
        &url,
        "--ca",
        s(&pki.join("etcd/ca.crt")),
        "--now",
        NOW,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with(&format!("ENDPOINT {url}: verified\n")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("CERTIFICATE "), "{}", run.stdout);
    let narrow = certs_env(
        [
            "inspect",
            &url,
            "--ca",
            s(&pki.join("etcd/ca.crt")),
            "--now",
            NOW,
        ],
        &[("COLUMNS", "80")],
    );
    assert_eq!(
        too_wide(&narrow.stdout, 80),
        Vec::<&str>::new(),
        "{}",
        narrow.stdout
    );
    assert!(narrow.stdout.contains("RESIDUAL TIME"));
}

/// Every subcommand's --help ends with examples; every argument has help text (hidden ones
/// aside).
#[test]
fn help_has_examples_and_every_flag_is_explained() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let after = cmd
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        if !(after.starts_with("Examples:\n  ") || after.starts_with("Example:\n  ")) {
            missing.push(format!("`{path}` has no Examples section"));
        }
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            let help = arg.get_help().or(arg.get_long_help());
            if help.is_none_or(|h| h.to_string().trim().is_empty()) {
                missing.push(format!("`{path}` argument `{}` has no help", arg.get_id()));
            }
        }
        // Hidden subcommands (a playbook's internals) are not in --help, so need no examples.
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_about().is_none() {
                missing.push(format!("`{path} {}` has no description", sub.get_name()));
            }
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut cmd = certs::cli::Args::command();
    cmd.build();
    let mut missing = Vec::new();
    walk(&cmd, "certs", &mut missing);
    assert_eq!(missing, Vec::<String>::new());

    let run = certs(["inspect", "--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("\nExamples:\n"), "{}", run.stdout);
    assert!(run.stdout.contains("certs inspect --warn-within 30d"));
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = certs(["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("warn-within"), "{shell}");
        assert!(run.stdout.contains("rollout"), "{shell}");
    }
    // The bash script is valid bash.
    let script = certs(["completions", "bash"]).stdout;
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), &script).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(certs(["completions", "tcsh"]).code, 2);
}

#[test]
fn man_pages_for_certs_and_each_subcommand() {
    let top = certs(["man"]);
    assert_eq!(top.code, 0, "{}", top.stderr);
    assert!(top.stdout.contains(".TH certs 1"), "{}", top.stdout);
    assert!(top.stdout.contains("certs\\-inspect(1)"), "{}", top.stdout);
    let page = certs(["man", "rollout", "apply"]);
    assert_eq!(page.code, 0, "{}", page.stderr);
    assert!(
        page.stdout.contains(".TH certs-rollout-apply 1"),
        "{}",
        page.stdout
    );
    assert!(
        page.stdout.contains("\\-\\-health\\-timeout"),
        "{}",
        page.stdout
    );
    // Examples kept line by line (no-fill), not run together.
    let ex = page.stdout.split(".SH EXAMPLES").nth(1).expect("EXAMPLES");
    assert!(ex.starts_with("\n.nf\n"), "{ex}");
    assert!(
        ex.contains("\ncerts rollout apply /root/vip\n")
            || ex.contains("  certs rollout apply /root/vip\n"),
        "{ex}"
    );
    let bad = certs(["man", "nope"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("inspect"), "{}", bad.stderr);
    // Groff reads it without a warning (groff-base; tests/debian.sh installs it).
    assert!(
        Command::new("groff").arg("--version").output().is_ok(),
        "groff not found: apt-get install groff-base (tests/debian.sh does)"
    );
    {
        let mut child = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(page.stdout.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    }
}

/// Notes and warnings go to stderr: stdout stays the document.
#[test]
fn notes_go_to_stderr() {
    let run = certs(["spec", "--template", "etcd", "--add-san", "127.0.0.1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("already present"), "{}", run.stderr);
    run.json();
}

/// A slow inspect (an endpoint that accepts and never answers) shows a progress line on a
/// terminal's stderr, erased before the error; with stderr a pipe, only the error.
#[test]
fn progress_line_only_on_a_terminal() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", silent.local_addr().unwrap());
    let cmd = format!(
        "stty cols 80 rows 40; exec {} inspect {url} --insecure --timeout 2s",
        env!("CARGO_BIN_EXE_certs")
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("probing {url}")), "{text}");
    // The line is erased (ESC [2K) before the error is written.
    let erased = text.rfind("\x1b[2K").expect("the progress line erased");
    assert!(
        text[erased..].contains("did not answer within 2s"),
        "{text:?}"
    );

    let piped = certs(["inspect", &url, "--insecure", "--timeout", "1s"]);
    assert_eq!(piped.code, 2);
    assert_eq!(piped.stderr.lines().count(), 1, "{:?}", piped.stderr);
    assert!(!piped.stderr.contains("probing"), "{:?}", piped.stderr);
}
