//! The wall clock, read in one place. Everything else takes `now` as a parameter.

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A started timer, for elapsed times in progress events and deadlines.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch(std::time::Instant::now())
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

/// Waits: between health probes, while a static pod is parked.
pub fn sleep(d: std::time::Duration) {
    std::thread::sleep(d);
}
