//! medic's own process families, named as every Prometheus client names
//! them: CPU time, resident and virtual memory, open and maximum file
//! descriptors, start time. CPU time and descriptors come from the kernel's
//! calls everywhere; memory and start time from /proc (Linux only).

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage};
use nix::unistd::{SysconfVar, sysconf};

use crate::{Exposition, Kind};

/// Writes every process family this system can give.
pub fn render(out: &mut Exposition) {
    if let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) {
        let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        let cpu = seconds(usage.user_time()) + seconds(usage.system_time());
        one(
            out,
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
            cpu,
        );
    }
    let statm = std::fs::read_to_string("/proc/self/statm").ok();
    let page = sysconf(SysconfVar::PAGE_SIZE).ok().flatten();
    if let (Some(statm), Some(page)) = (statm, page) {
        let pages = |i| memory(&statm, i, page as u64);
        if let Some(bytes) = pages(1) {
            let help = "Resident memory size in bytes.";
            one(
                out,
                "process_resident_memory_bytes",
                Kind::Gauge,
                help,
                bytes,
            );
        }
        if let Some(bytes) = pages(0) {
            let help = "Virtual memory size in bytes.";
            one(
                out,
                "process_virtual_memory_bytes",
                Kind::Gauge,
                help,
                bytes,
            );
        }
    }
    let fds = std::fs::read_dir("/proc/self/fd").or_else(|_| std::fs::read_dir("/dev/fd"));
    if let Ok(fds) = fds {
        // The directory being read holds one descriptor of its own.
        let open = fds.count().saturating_sub(1) as f64;
        let help = "Number of open file descriptors.";
        one(out, "process_open_fds", Kind::Gauge, help, open);
    }
    if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let help = "Maximum number of open file descriptors.";
        one(out, "process_max_fds", Kind::Gauge, help, soft as f64);
    }
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let system = std::fs::read_to_string("/proc/stat").ok();
    let ticks = sysconf(SysconfVar::CLK_TCK).ok().flatten();
    if let (Some(stat), Some(system), Some(ticks)) = (stat, system, ticks)
        && let Some(start) = start_time(&stat, &system, ticks as u64)
    {
        let help = "Start time of the process since unix epoch in seconds.";
        one(out, "process_start_time_seconds", Kind::Gauge, help, start);
    }
}

/// A family with one unlabelled sample.
fn one(out: &mut Exposition, name: &str, kind: Kind, help: &str, value: f64) {
    out.family(name, kind, help);
    out.sample(name, &[], value);
}

/// Field `index` of `/proc/self/statm` (pages) in bytes.
fn memory(statm: &str, index: usize, page: u64) -> Option<f64> {
    let pages: u64 = statm.split_whitespace().nth(index)?.parse().ok()?;
    Some(pages.saturating_mul(page) as f64)
}

/// When the process started, in seconds since the epoch: its `starttime`
/// (clock ticks after boot, field 22 of `/proc/self/stat`) plus the boot
/// time (`btime` of `/proc/stat`).
fn start_time(stat: &str, system: &str, ticks_per_second: u64) -> Option<f64> {
    // The command name in parentheses may hold spaces; fields follow its last `)`,
    // the first of them being field 3 (state).
    let (_, rest) = stat.rsplit_once(')')?;
    let start_ticks: u64 = rest.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let boot: u64 = system
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    if ticks_per_second == 0 {
        return None;
    }
    Some(boot as f64 + start_ticks as f64 / ticks_per_second as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    #[test]
    fn start_time_is_boot_time_plus_the_start_ticks() {
        let stat =
            "4242 (medic (a) b) S 1 4242 4242 0 -1 4194560 1 0 0 0 3 4 0 0 20 0 9 0 12345 1000 200";
        let system = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
        assert_eq!(start_time(stat, system, 100), Some(1_700_000_123.45));
        assert_eq!(start_time(stat, "cpu 1\n", 100), None);
        assert_eq!(start_time("4242 (medic) S 1", system, 100), None);
        assert_eq!(start_time(stat, system, 0), None);
    }

    #[test]
    fn memory_is_pages_times_the_page_size() {
        assert_eq!(memory("100 25 3 1 0 9 0\n", 1, 16384), Some(409_600.0));
        assert_eq!(memory("100 25 3 1 0 9 0\n", 0, 65536), Some(6_553_600.0));
        assert_eq!(memory("", 1, 4096), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_gives_every_process_family() {
        let mut out = Exposition::new(Format::Text);
        render(&mut out);
        let text = out.finish();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                text.contains(&format!("\n{name} ")),
                "{name} missing:\n{text}"
            );
        }
    }
}
