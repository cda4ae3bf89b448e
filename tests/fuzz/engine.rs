//! The fuzzing engine: a deterministic mutation fuzzer that runs on stable Rust, no coverage
//! instrumentation needed. Each target gives a seed corpus (read from `fixtures/` at run time),
//! a dictionary of tokens its format cares about, and a function that runs one input and checks
//! what it produced. The engine feeds it mutated inputs and reports three kinds of failure:
//!
//! - **panic**: the target (or anything it calls, on any thread) panicked;
//! - **hang**: one input took longer than the watchdog's limit (5 s); the run of that target
//!   stops there, since a thread cannot be killed;
//! - **reject**: the target's own output check failed (an edited kubeconfig that does not
//!   re-parse, a written certificate a strict parser refuses, a finding quoting a key body).
//!
//! Inputs whose behaviour looks new (the target returns a short "shape" of what it did: which
//! items, which kind of error) join the corpus, so the run drifts towards inputs that reach new
//! code even without coverage counters. Everything is driven by one seeded PRNG: the same seed
//! and iteration count give the same inputs, so the short in-suite run never flakes.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// What running one input says: `Ok(shape)` (a short description of the behaviour, used as
/// feedback) or `Err(why)` when the target's output check failed.
pub type Verdict = Result<String, String>;

pub struct Target {
    pub name: &'static str,
    /// What it covers, for the report.
    pub about: &'static str,
    pub seeds: fn() -> Vec<Vec<u8>>,
    pub dict: &'static [&'static [u8]],
    pub run: fn(&[u8]) -> Verdict,
    /// Failures the short in-suite run tolerates because another item of issue 12 fixes them:
    /// `(substring of the failure message, the TODO naming the item)`. The long run counts them
    /// as failures like any other.
    pub known: &'static [(&'static str, &'static str)],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Panic,
    Hang,
    Reject,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Panic => "panic",
            Kind::Hang => "hang",
            Kind::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    pub input: Vec<u8>,
    pub saved: Option<PathBuf>,
    /// Matched an entry of [`Target::known`]: its TODO.
    pub known: Option<&'static str>,
}

pub struct Config {
    /// Stop after this many inputs (the short run).
    pub iterations: Option<u64>,
    /// Stop after this long (the long run).
    pub duration: Option<Duration>,
    pub seed: u64,
    /// Where failing inputs are saved (`DIR/TARGET/KIND-HASH`), if anywhere.
    pub out: Option<PathBuf>,
    /// One input taking longer than this is a hang.
    pub timeout: Duration,
    pub max_len: usize,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub tried: u64,
    pub panics: u64,
    pub hangs: u64,
    pub rejects: u64,
    pub corpus: usize,
    pub elapsed: Duration,
    pub slowest: Duration,
    pub slowest_len: usize,
    /// Distinct failures (by kind and message shape), first input of each.
    pub failures: Vec<Failure>,
    /// An input a previous run was on when the process died (abort, stack overflow, OOM).
    pub aborted: Option<PathBuf>,
}

/// One fuzz run at a time per process: the panic hook and its message slot are global.
static RUNNING: Mutex<()> = Mutex::new(());
static QUIET: AtomicBool = AtomicBool::new(false);
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
static HOOK: Once = Once::new();

fn install_hook() {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.load(Ordering::SeqCst) {
                return default(info);
            }
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".into());
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let mut slot = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner());
            // The first panic is the cause; a scoped thread's panic re-raised by its owner is not.
            if slot.is_none() {
                *slot = Some(format!("{payload} at {at}"));
            }
        }));
    });
}

/// splitmix64: small, fast, and the same on every platform and Rust version.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

pub fn hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// A message with what varies from input to input (quoted text, numbers) taken out, so one bug
/// is reported once and a shape is a small set.
pub fn shape(message: &str) -> String {
    let mut out = String::new();
    let mut quoted: Option<char> = None;
    for c in message.chars() {
        match c {
            '`' | '"' if quoted.is_none() => {
                quoted = Some(c);
                out.push(c);
                out.push('…');
                out.push(c);
            }
            _ if quoted == Some(c) => quoted = None,
            _ if quoted.is_some() => {}
            '0'..='9' => {
                if !out.ends_with('#') {
                    out.push('#');
                }
            }
            _ => out.push(c),
        }
        if out.chars().count() >= 72 {
            break;
        }
    }
    out
}

const INTERESTING_BYTES: &[u8] = b"\0\x7f\x80\xff\n\r\t :-\"'[]{}&*#\\=,/.@%$!|>";
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "255",
    "256",
    "65535",
    "65536",
    "2147483648",
    "4294967296",
    "9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999999999999",
];

/// One mutated copy of a corpus entry (1 to 4 mutations stacked).
pub fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], dict: &[&[u8]], max_len: usize) -> Vec<u8> {
    let mut data = corpus[rng.below(corpus.len())].clone();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        mutate_once(rng, &mut data, corpus, dict);
    }
    data.truncate(max_len);
    data
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, corpus: &[Vec<u8>], dict: &[&[u8]]) {
    let len = data.len();
    let pos = |rng: &mut Rng| if len == 0 { 0 } else { rng.below(len + 1) };
    match rng.below(15) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
        }
        2 | 3 if !dict.is_empty() => {
            let tok = dict[rng.below(dict.len())];
            let at = if rng.chance(2) {
                line_start(data, pos(rng))
            } else {
                pos(rng)
            };
            splice_in(data, at, tok);
        }
        4 if len > 0 => {
            let a = rng.below(len);
            let n = 1 + rng.below((len - a).min(64));
            data.drain(a..a + n);
        }
        5 if len > 0 => {
            // Repeat a chunk: nesting, long lines, many entries.
            let a = rng.below(len);
            let n = 1 + rng.below((len - a).min(32));
            let chunk = data[a..a + n].to_vec();
            let times = match rng.below(4) {
                0 => 1 + rng.below(4),
                1 => 1 + rng.below(64),
                2 => 1 + rng.below(1024),
                _ => 1 + rng.below(65536),
            };
            let mut rep = Vec::with_capacity(chunk.len() * times);
            for _ in 0..times {
                rep.extend_from_slice(&chunk);
                if rep.len() > 300_000 {
                    break;
                }
            }
            splice_in(data, a, &rep);
        }
        6 => {
            let other = &corpus[rng.below(corpus.len())];
            if !other.is_empty() {
                let a = rng.below(other.len());
                let n = 1 + rng.below((other.len() - a).min(512));
                let chunk = other[a..a + n].to_vec();
                let at = pos(rng);
                if rng.chance(2) {
                    splice_in(data, at, &chunk);
                } else {
                    let end = (at + chunk.len()).min(data.len());
                    data.splice(at..end, chunk);
                }
            }
        }
        7 if len > 0 => data.truncate(rng.below(len)),
        8 => lines_op(rng, data),
        9 => number_op(rng, data),
        10 | 11 => {
            if !der_in_pem(rng, data) && !der_in_base64(rng, data) {
                let i = pos(rng);
                splice_in(
                    data,
                    i,
                    &[INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())]],
                );
            }
        }
        12 => {
            for b in data.iter_mut() {
                if *b == b' ' && rng.chance(3) {
                    *b = b'\t';
                }
            }
        }
        13 => {
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            let i = pos(rng);
            splice_in(data, i, &bytes);
        }
        _ if len > 0 => der_op(rng, data),
        _ => data.push(rng.next() as u8),
    }
}

fn splice_in(data: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let at = at.min(data.len());
    data.splice(at..at, bytes.iter().copied());
}

fn line_start(data: &[u8], at: usize) -> usize {
    data[..at.min(data.len())]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

fn lines_op(rng: &mut Rng, data: &mut Vec<u8>) {
    let mut lines: Vec<Vec<u8>> = data
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    if lines.is_empty() {
        return;
    }
    let i = rng.below(lines.len());
    match rng.below(4) {
        0 => {
            lines.remove(i);
        }
        1 => {
            let l = lines[i].clone();
            lines.insert(i, l);
        }
        2 => {
            let j = rng.below(lines.len());
            lines.swap(i, j);
        }
        _ => {
            // Re-indent: YAML and configs care.
            let l = &mut lines[i];
            if rng.chance(2) {
                l.splice(0..0, b"  ".iter().copied());
            } else if l.first() == Some(&b' ') {
                l.remove(0);
            }
        }
    }
    *data = lines.concat();
}

fn number_op(rng: &mut Rng, data: &mut Vec<u8>) {
    let digits: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_digit())
        .map(|(i, _)| i)
        .collect();
    if digits.is_empty() {
        return;
    }
    let start = digits[rng.below(digits.len())];
    let end = data[start..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(data.len(), |n| start + n);
    let n = NUMBERS[rng.below(NUMBERS.len())].as_bytes().to_vec();
    data.splice(start..end, n);
}

/// Structure-aware DER mutation: a length byte, a tag, a truncation, a bit.
fn der_op(rng: &mut Rng, der: &mut Vec<u8>) {
    let len = der.len();
    let i = rng.below(len);
    match rng.below(5) {
        0 => der[i] = [0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff][rng.below(8)],
        1 => {
            der[i] = [
                0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x30, 0x31, 0xa0, 0xa3,
            ][rng.below(14)]
        }
        2 => der.truncate(i),
        3 => der[i] = der[i].wrapping_add(1),
        _ => der[i] = der[i].wrapping_sub(1),
    }
}

/// Mutates the DER inside one PEM block of `data` and re-encodes it; false without a block.
fn der_in_pem(rng: &mut Rng, data: &mut Vec<u8>) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(blocks) = pem::parse_many(text) else {
        return false;
    };
    if blocks.is_empty() {
        return false;
    }
    let b = &blocks[rng.below(blocks.len())];
    let old = pem::encode(b);
    let Some(at) = text.find(old.trim_end()) else {
        return false;
    };
    let mut der = b.contents().to_vec();
    if der.is_empty() {
        return false;
    }
    for _ in 0..1 + rng.below(3) {
        if der.is_empty() {
            break;
        }
        der_op(rng, &mut der);
    }
    let new = pem::encode(&pem::Pem::new(b.tag(), der));
    let mut out = text[..at].to_string();
    out.push_str(new.trim_end());
    out.push_str(&text[at + old.trim_end().len()..]);
    *data = out.into_bytes();
    true
}

/// Mutates the content of one long base64 word (a kubeconfig's `*-data`): the PEM inside it, or
/// its bytes; false without one.
fn der_in_base64(rng: &mut Rng, data: &mut Vec<u8>) -> bool {
    use base64::Engine;
    let b64 = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=');
    let mut words = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if b64(data[i]) {
            let s = i;
            while i < data.len() && b64(data[i]) {
                i += 1;
            }
            if i - s >= 64 {
                words.push(s..i);
            }
        } else {
            i += 1;
        }
    }
    if words.is_empty() {
        return false;
    }
    let w = words[rng.below(words.len())].clone();
    let engine = base64::engine::general_purpose::STANDARD;
    let Ok(mut inner) = engine.decode(&data[w.clone()]) else {
        return false;
    };
    if !der_in_pem(rng, &mut inner) {
        if inner.is_empty() {
            return false;
        }
        der_op(rng, &mut inner);
    }
    let enc = engine.encode(&inner).into_bytes();
    data.splice(w, enc);
    true
}

/// Reads every file under `dir` (recursively, symlinks not followed), in path order.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                if let Ok(b) = std::fs::read(&p) {
                    out.push((p, b));
                }
            }
        }
    }
    out.sort();
    out
}

/// The committed fixture trees.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Saved reproducers of `target`: `tests/fuzz/crashes/TARGET/*` (not `*.txt`).
pub fn reproducers(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/crashes")
        .join(target);
    files_under(&dir)
        .into_iter()
        .filter(|(p, _)| p.extension().is_none_or(|e| e != "txt" && e != "md"))
        .collect()
}

struct Shared {
    /// The input being run and since when (nanoseconds after `base`); 0: none.
    started: AtomicU64,
    input: Mutex<Vec<u8>>,
    stop: AtomicBool,
    done: AtomicBool,
    stats: Mutex<Stats>,
}

/// Runs `inputs` first (as they are), then mutations of the corpus, until the config's bound.
pub fn run(target: &Target, inputs: Vec<Vec<u8>>, cfg: &Config) -> Stats {
    let _one = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    install_hook();
    let out_dir = cfg.out.as_ref().map(|d| d.join(target.name));
    let mut aborted = None;
    if let Some(d) = &out_dir {
        std::fs::create_dir_all(d).expect("create the fuzz output directory");
        // An input a previous run died on (abort, stack overflow, OOM) is a crash.
        let current = d.join(".current");
        if let Ok(bytes) = std::fs::read(&current) {
            let to = d.join(format!("aborted-{:016x}", hash(&bytes)));
            std::fs::rename(&current, &to).expect("keep the aborted input");
            aborted = Some(to);
        }
    }
    let seeds = (target.seeds)();
    assert!(!seeds.is_empty(), "target {} has no seeds", target.name);
    let shared = Arc::new(Shared {
        started: AtomicU64::new(0),
        input: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        done: AtomicBool::new(false),
        stats: Mutex::new(Stats {
            aborted,
            ..Stats::default()
        }),
    });
    let base = Instant::now();
    QUIET.store(true, Ordering::SeqCst);
    let worker = {
        let shared = Arc::clone(&shared);
        let (run_one, known, dict, name) = (target.run, target.known, target.dict, target.name);
        let (iterations, duration, seed, max_len) =
            (cfg.iterations, cfg.duration, cfg.seed, cfg.max_len);
        let current_file = out_dir.as_ref().map(|d| d.join(".current"));
        let out_dir = out_dir.clone();
        std::thread::Builder::new()
            .name(format!("fuzz-{name}"))
            .stack_size(8 << 20)
            .spawn(move || {
                let mut rng = Rng::new(seed);
                let mut corpus = seeds;
                let mut seen: HashSet<u64> = HashSet::new();
                let mut reported: HashSet<(Kind, String)> = HashSet::new();
                let mut pending = inputs.into_iter();
                let (mut from_seeds, n_seeds) = (0, corpus.len());
                let mut tried = 0u64;
                loop {
                    if shared.stop.load(Ordering::SeqCst)
                        || iterations.is_some_and(|n| tried >= n)
                        || duration.is_some_and(|d| base.elapsed() >= d)
                    {
                        break;
                    }
                    let input = if let Some(i) = pending.next() {
                        i
                    } else if from_seeds < n_seeds {
                        from_seeds += 1;
                        corpus[from_seeds - 1].clone()
                    } else {
                        mutate(&mut rng, &corpus, dict, max_len)
                    };
                    if let Some(f) = &current_file {
                        let _ = std::fs::write(f, &input);
                    }
                    *shared.input.lock().unwrap() = input.clone();
                    let t0 = base.elapsed();
                    shared
                        .started
                        .store(t0.as_nanos() as u64 + 1, Ordering::SeqCst);
                    *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    let verdict = catch_unwind(AssertUnwindSafe(|| run_one(&input)));
                    let took = base.elapsed() - t0;
                    shared.started.store(0, Ordering::SeqCst);
                    tried += 1;
                    let mut st = shared.stats.lock().unwrap();
                    st.tried = tried;
                    if took > st.slowest {
                        st.slowest = took;
                        st.slowest_len = input.len();
                    }
                    let failure = match verdict {
                        Ok(Ok(s)) => {
                            if seen.insert(hash(s.as_bytes())) && corpus.len() < 4096 {
                                corpus.push(input.clone());
                            }
                            None
                        }
                        Ok(Err(why)) => {
                            st.rejects += 1;
                            Some((Kind::Reject, why))
                        }
                        Err(_) => {
                            st.panics += 1;
                            let msg = LAST_PANIC
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .take()
                                .unwrap_or_else(|| "panic".into());
                            Some((Kind::Panic, msg))
                        }
                    };
                    st.corpus = corpus.len();
                    if let Some((kind, message)) = failure {
                        if reported.insert((kind, shape(&message))) && st.failures.len() < 64 {
                            let known = known
                                .iter()
                                .find(|(sub, _)| message.contains(sub))
                                .map(|(_, todo)| *todo);
                            let saved = out_dir.as_ref().map(|d| save(d, kind, &message, &input));
                            st.failures.push(Failure {
                                kind,
                                message,
                                input,
                                saved,
                                known,
                            });
                        }
                    }
                }
                if let Some(f) = &current_file {
                    let _ = std::fs::remove_file(f);
                }
                shared.done.store(true, Ordering::SeqCst);
            })
            .expect("spawn the fuzz worker")
    };
    // The watchdog: this thread.
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if shared.done.load(Ordering::SeqCst) {
            let _ = worker.join();
            break;
        }
        let started = shared.started.load(Ordering::SeqCst);
        if started != 0 {
            let running = base
                .elapsed()
                .saturating_sub(Duration::from_nanos(started - 1));
            if running > cfg.timeout {
                shared.stop.store(true, Ordering::SeqCst);
                let input = shared.input.lock().unwrap().clone();
                let message = format!(
                    "one input ran over {} s (still running after {:.1} s; {} bytes)",
                    cfg.timeout.as_secs(),
                    running.as_secs_f64(),
                    input.len()
                );
                let saved = out_dir
                    .as_ref()
                    .map(|d| save(d, Kind::Hang, &message, &input));
                if let Some(d) = &out_dir {
                    // Not an abort: the hang is recorded as such.
                    let _ = std::fs::remove_file(d.join(".current"));
                }
                let mut st = shared.stats.lock().unwrap();
                st.hangs += 1;
                let known = target
                    .known
                    .iter()
                    .find(|(sub, _)| message.contains(sub))
                    .map(|(_, todo)| *todo);
                st.failures.push(Failure {
                    kind: Kind::Hang,
                    message,
                    input,
                    saved,
                    known,
                });
                // The hung worker cannot be stopped; it is left behind and this target's run ends.
                break;
            }
        }
    }
    QUIET.store(false, Ordering::SeqCst);
    let mut st = std::mem::take(&mut *shared.stats.lock().unwrap());
    st.elapsed = base.elapsed();
    st
}

fn save(dir: &Path, kind: Kind, message: &str, input: &[u8]) -> PathBuf {
    let path = dir.join(format!("{}-{:016x}", kind.as_str(), hash(input)));
    std::fs::write(&path, input).expect("save the failing input");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("failures.txt"))
        .expect("open failures.txt");
    let _ = writeln!(
        log,
        "{}\t{}\t{}",
        kind.as_str(),
        path.file_name().unwrap().to_string_lossy(),
        message.replace('\n', " ")
    );
    path
}

/// One line for the report, and the failures under it.
pub fn summary(target: &Target, st: &Stats) -> String {
    let mut s = format!(
        "{:<16} {:>9} inputs in {:>7.1} s ({:>7.0}/s), corpus {:>4}, panics {}, hangs {}, rejects {}, slowest {:.3} s ({} bytes)",
        target.name,
        st.tried,
        st.elapsed.as_secs_f64(),
        st.tried as f64 / st.elapsed.as_secs_f64().max(1e-9),
        st.corpus,
        st.panics,
        st.hangs,
        st.rejects,
        st.slowest.as_secs_f64(),
        st.slowest_len
    );
    if let Some(a) = &st.aborted {
        s.push_str(&format!(
            "\n  ABORTED in a previous run (process died) on {}",
            a.display()
        ));
    }
    for f in st.failures.iter().take(12) {
        s.push_str(&format!(
            "\n  {}{}: {}{}",
            f.kind.as_str(),
            f.known
                .map(|t| format!(" (known, {t})"))
                .unwrap_or_default(),
            f.message.chars().take(200).collect::<String>(),
            f.saved
                .as_ref()
                .map(|p| format!(" [saved {}]", p.display()))
                .unwrap_or_else(|| format!(
                    " [input {} bytes, {:?}…]",
                    f.input.len(),
                    String::from_utf8_lossy(&f.input[..f.input.len().min(60)])
                ))
        ));
    }
    if st.failures.len() > 12 {
        s.push_str(&format!(
            "\n  … and {} more distinct failures",
            st.failures.len() - 12
        ));
    }
    s
}
