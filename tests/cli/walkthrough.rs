//! README's walkthroughs, run: every ```sh block that starts with `# walkthrough: NAME` is run
//! on fresh copies of the fixtures laid out as the README's set-up leaves them (`/tmp/wt/<layout>`
//! becomes a temp dir), and every line of the ```text block after it (but `…`) must be printed.

use std::path::Path;

use crate::util::{fixture, path_with, repo};

struct Walkthrough {
    name: String,
    commands: Vec<String>,
    expected: Vec<String>,
}

fn walkthroughs(readme: &str) -> Vec<Walkthrough> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let name = lines
            .get(i + 1)
            .and_then(|l| l.strip_prefix("# walkthrough: "));
        if lines[i] != "```sh" || name.is_none() {
            i += 1;
            continue;
        }
        let name = name.unwrap().to_string();
        let mut j = i + 2;
        let mut commands = Vec::new();
        while lines[j] != "```" {
            commands.push(lines[j].to_string());
            j += 1;
        }
        assert_eq!(lines[j + 1], "```text", "{name}: expected output block");
        let mut k = j + 2;
        let mut expected = Vec::new();
        while lines[k] != "```" {
            if lines[k] != "…" {
                expected.push(lines[k].to_string());
            }
            k += 1;
        }
        out.push(Walkthrough {
            name,
            commands,
            expected,
        });
        i = k + 1;
    }
    out
}

/// `/tmp/wt` with the four layouts, keys 0600 (`fixture` does that), and a no-op systemctl.
fn set_up(wt: &Path) {
    for layout in ["kubeadm", "kubeasz-ecdsa", "binary", "kubespray"] {
        let copy = fixture(layout);
        std::fs::rename(copy.path(), wt.join(layout)).unwrap_or_else(|_| {
            // A temp dir on another file system: copy instead.
            let status = std::process::Command::new("cp")
                .arg("-a")
                .arg(copy.path())
                .arg(wt.join(layout))
                .status()
                .unwrap();
            assert!(status.success());
        });
        std::mem::forget(copy);
    }
    use std::os::unix::fs::PermissionsExt;
    let bin = wt.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("systemctl"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        bin.join("systemctl"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

#[test]
fn readme_walkthroughs_print_what_the_readme_shows() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let all = walkthroughs(&readme);
    assert!(all.len() >= 4, "found {} walkthroughs", all.len());
    for w in all {
        let dir = tempfile::tempdir().unwrap();
        let wt = dir.path();
        set_up(wt);
        let wt_s = wt.to_str().unwrap();
        let mut stdout = String::new();
        for cmd in &w.commands {
            let line = cmd.replace("/tmp/wt", wt_s);
            let line = match line.strip_prefix("certs ") {
                Some(rest) => format!("'{}' {rest}", env!("CARGO_BIN_EXE_certs")),
                None => line,
            };
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&line)
                .env("PATH", path_with(&wt.join("bin")))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).replace(wt_s, "/tmp/wt");
            assert!(
                out.status.success(),
                "{}: `{cmd}` failed:\n{text}\n{}",
                w.name,
                String::from_utf8_lossy(&out.stderr)
            );
            stdout.push_str(&text);
        }
        for want in &w.expected {
            assert!(
                stdout.lines().any(|l| l.trim_end() == want.trim_end()),
                "{}: README shows\n{want}\nbut the output was:\n{stdout}",
                w.name
            );
        }
    }
}
