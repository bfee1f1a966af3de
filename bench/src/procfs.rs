//! CPU time and resident memory of a process, read from `/proc`.
//!
//! CPU time (user + system, all threads, including exited ones) is what makes
//! numbers comparable on a noisy shared machine: wall-clock throughput moves
//! with the neighbours, CPU seconds per event much less.

use std::process::Command;

use anyhow::{Context, bail};

/// Which process to read: a pid, or this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    This,
    Other(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Self::This => "/proc/self".to_owned(),
            Self::Other(pid) => format!("/proc/{pid}"),
        }
    }
}

/// Clock ticks per second for `/proc/<pid>/stat` times. `getconf` rather
/// than `sysconf(3)` because the workspace forbids `unsafe`; 100 is the value
/// on every Linux this runs on, and the fallback.
pub fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// Reads CPU seconds of processes; holds the tick rate.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock {
    ticks_per_second: f64,
}

impl Default for CpuClock {
    fn default() -> Self {
        Self {
            ticks_per_second: clock_ticks_per_second(),
        }
    }
}

impl CpuClock {
    /// User + system CPU seconds `pid` has used so far.
    pub fn seconds(&self, pid: Pid) -> anyhow::Result<f64> {
        let path = format!("{}/stat", pid.dir());
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let ticks = parse_stat_cpu_ticks(&text).with_context(|| format!("parsing {path}"))?;
        Ok(ticks as f64 / self.ticks_per_second)
    }
}

/// utime + stime from a `/proc/<pid>/stat` line. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("no `)` in stat line");
    };
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .context("stat line too short")?
            .parse()
            .context("stat field is not a number")
    };
    Ok(field(14)? + field(15)?)
}

/// Resident set size now and its peak (high-water mark), in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
}

pub fn memory(pid: Pid) -> anyhow::Result<Memory> {
    let path = format!("{}/status", pid.dir());
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status_memory(&text).with_context(|| format!("parsing {path}"))
}

/// `VmRSS` and `VmHWM` (both in kB) from `/proc/<pid>/status`.
pub fn parse_status_memory(status: &str) -> anyhow::Result<Memory> {
    let kb = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .with_context(|| format!("no {name} line"))?;
        let value = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .with_context(|| format!("{name} is not a number"))?;
        Ok(value * 1024)
    };
    Ok(Memory {
        rss_bytes: kb("VmRSS:")?,
        peak_rss_bytes: kb("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194304 2000 0 0 0 150 25 0 0 20 0 9 0 100 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(line).unwrap(), 175);
        assert!(parse_stat_cpu_ticks("garbage").is_err());
    }

    #[test]
    fn status_memory_is_read_in_bytes() {
        let status = "Name:\tsluice-gateway\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        let memory = parse_status_memory(status).unwrap();
        assert_eq!(memory.rss_bytes, 40 * 1024 * 1024);
        assert_eq!(memory.peak_rss_bytes, 50 * 1024 * 1024);
    }

    #[test]
    fn own_process_is_readable() {
        let clock = CpuClock::default();
        assert!(clock.seconds(Pid::This).unwrap() >= 0.0);
        assert!(memory(Pid::This).unwrap().rss_bytes > 0);
    }
}
