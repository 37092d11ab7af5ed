//! CPU time and memory of the server's processes (and of the bench itself),
//! read from `/proc`: only meaningful when the server runs on this machine.

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU times at one moment, to subtract from later.
pub struct Mark {
    at: Instant,
    server: u64,
    own: u64,
}

/// CPU used since a [`Mark`], in % of one core.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CpuUse {
    pub server_cpu: Option<f64>,
    pub bench_cpu: f64,
}

/// The processes whose CPU and memory are reported.
pub struct Procs {
    pids: Vec<u32>,
}

impl Procs {
    /// Watches `pids` (may be empty: a remote server).
    pub fn new(pids: &[u32]) -> Self {
        Self { pids: pids.to_vec() }
    }

    /// CPU times now.
    pub fn mark(&self) -> Mark {
        Mark {
            at: Instant::now(),
            server: self.pids.iter().filter_map(|pid| ticks(&pid.to_string())).sum(),
            own: ticks("self").unwrap_or(0),
        }
    }

    /// CPU used since `mark`.
    pub fn cpu_since(&self, mark: &Mark) -> CpuUse {
        let now = self.mark();
        let secs = now.at.duration_since(mark.at).as_secs_f64().max(1e-9);
        let percent = |ticks: u64| (ticks as f64 / TICKS_PER_SECOND / secs * 1000.0).round() / 10.0;
        CpuUse {
            server_cpu: (!self.pids.is_empty()).then(|| percent(now.server - mark.server)),
            bench_cpu: percent(now.own - mark.own),
        }
    }

    /// Resident memory of the server's processes, KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|pid| rss(*pid)).sum()
    }
}

/// utime + stime of `/proc/<which>/stat`.
fn ticks(which: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{which}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) closing with ')':
    // state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// `VmRSS` of `/proc/<pid>/status`, KiB.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
