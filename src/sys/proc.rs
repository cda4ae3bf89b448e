//! Running restart commands: `sh -c CMD` with a deadline, output captured (never inherited, so a
//! command cannot scribble over our progress lines), killed when it overruns.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a command did.
#[derive(Debug)]
pub struct Ran {
    pub success: bool,
    /// Exit status in words (`exit 1`, `killed after 30s`).
    pub status: String,
    /// The tail of its combined output, for error messages.
    pub output: String,
}

pub fn run_shell(command: &str, timeout: Duration) -> std::io::Result<Ran> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // Drain both pipes on threads so a chatty command cannot block on a full pipe.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A background grandchild may keep the pipes open: do not wait for them past the deadline.
    let collect = |h: std::thread::JoinHandle<String>| {
        if h.is_finished() {
            h.join().unwrap_or_default()
        } else {
            String::new()
        }
    };
    std::thread::sleep(Duration::from_millis(10));
    let output = format!("{}{}", collect(out), collect(err));
    let tail: String = output
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" | ");
    Ok(match status {
        Some(s) => Ran {
            success: s.success(),
            status: s
                .code()
                .map_or("killed by a signal".into(), |c| format!("exit {c}")),
            output: tail,
        },
        None => Ran {
            success: false,
            status: format!("killed after {}s", timeout.as_secs()),
            output: tail,
        },
    })
}

/// Whether `program` can be run: a path to an executable file, or a name found on PATH.
pub fn runnable(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let exec = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return exec(std::path::Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| exec(&dir.join(program))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_output_and_timeout() {
        let ok = run_shell("echo hello; echo oops >&2", Duration::from_secs(5)).unwrap();
        assert!(ok.success && ok.output.contains("hello") && ok.output.contains("oops"));
        let bad = run_shell("exit 3", Duration::from_secs(5)).unwrap();
        assert_eq!((bad.success, bad.status.as_str()), (false, "exit 3"));
        let slow = run_shell("sleep 5", Duration::from_millis(200)).unwrap();
        assert!(!slow.success && slow.status.starts_with("killed after"));
    }
}
