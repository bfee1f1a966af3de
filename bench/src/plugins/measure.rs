//! The measuring instruments: this thread's CPU time, context switches and
//! page faults, the process's resident memory, and timed groups that keep
//! only what no context switch interrupted.

use std::time::Instant;

use super::MemorySample;
use crate::procfs;

/// CPU time, context switches and page faults of the thread that opened
/// it: `/proc/thread-self/schedstat` (nanoseconds spent on a CPU, and how
/// many times it was scheduled in) and `/proc/thread-self/stat` (minor
/// faults), kept open so a reading costs one `pread`.
///
/// The kernel updates a thread's CPU time at scheduler ticks (4 ms here), so
/// [`ThreadCpu::ns`] is exact over long intervals and only a sample over
/// short ones; the switch count is exact at any length.
#[derive(Debug)]
pub struct ThreadCpu {
    schedstat: Option<std::fs::File>,
    stat: Option<std::fs::File>,
}

fn pread<'b>(file: Option<&std::fs::File>, buf: &'b mut [u8]) -> Option<&'b str> {
    use std::os::unix::fs::FileExt;
    let n = file?.read_at(buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()
}

impl ThreadCpu {
    pub fn open() -> Self {
        Self {
            schedstat: std::fs::File::open("/proc/thread-self/schedstat").ok(),
            stat: std::fs::File::open("/proc/thread-self/stat").ok(),
        }
    }

    /// Nanoseconds the opening thread has run so far (0 if unreadable).
    pub fn ns(&self) -> u64 {
        let mut buf = [0u8; 128];
        pread(self.schedstat.as_ref(), &mut buf)
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// How many times the opening thread has been scheduled onto a CPU: if
    /// it did not change across an interval, nothing else ran on this
    /// thread's core in between (0 if unreadable).
    pub fn switches(&self) -> u64 {
        let mut buf = [0u8; 128];
        pread(self.schedstat.as_ref(), &mut buf)
            .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(0)
    }

    /// Minor page faults of the opening thread so far (0 if unreadable).
    pub fn minor_faults(&self) -> u64 {
        let mut buf = [0u8; 1024];
        pread(self.stat.as_ref(), &mut buf)
            .and_then(|s| s.rsplit_once(')'))
            // After the command name: field 3 (state) first; minflt is field 10.
            .and_then(|(_, rest)| rest.split_whitespace().nth(10 - 3)?.parse().ok())
            .unwrap_or(0)
    }
}

/// This process's resident memory, split by kind.
pub fn memory_sample(label: &str) -> MemorySample {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |v| v * 1024)
    };
    let rss_bytes =
        procfs::memory(procfs::Pid::This).map_or_else(|_| kb("VmRSS:"), |m| m.rss_bytes);
    MemorySample {
        label: label.to_owned(),
        rss_bytes,
        anon_bytes: kb("RssAnon:"),
        file_bytes: kb("RssFile:"),
        shmem_bytes: kb("RssShmem:"),
    }
}

/// Timed groups of operations, keeping those no context switch interrupted.
#[derive(Debug, Default)]
pub(crate) struct Undisturbed {
    ns: f64,
    operations: usize,
    pub(crate) kept: usize,
    pub(crate) total: usize,
}

impl Undisturbed {
    pub(crate) fn add(&mut self, undisturbed: bool, ns: f64, operations: usize) {
        self.total += 1;
        if undisturbed {
            self.kept += 1;
            self.ns += ns;
            self.operations += operations;
        }
    }

    /// Mean per operation over the kept groups (NaN if none was kept).
    pub(crate) fn mean_us(&self) -> f64 {
        if self.operations == 0 {
            f64::NAN
        } else {
            self.ns / 1000.0 / self.operations as f64
        }
    }
}

/// Nanoseconds since `t`.
pub(crate) fn ns_since(t: Instant) -> f64 {
    t.elapsed().as_nanos() as f64
}

/// Calls `f` until it succeeds, at most five times: on a busy machine a call
/// can run out of its CPU budget, which is wall-clock time.
pub(crate) fn with_retries<T>(mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let mut attempts = 0;
    loop {
        match f() {
            Ok(value) => return Ok(value),
            Err(err) if attempts >= 4 => return Err(err),
            Err(_) => attempts += 1,
        }
    }
}
