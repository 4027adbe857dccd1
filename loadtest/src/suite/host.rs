//! What the suite's report says about where and when it ran: the machine (CPU model, logical
//! CPUs and how many the suite may use, kernel, distribution, load average at the start), the
//! date in UTC, and the `torii` binary measured (its version, path and the git commit of the
//! tree it was built in).
//!
//! Reads `/proc`, `/etc/os-release`, `torii --version` and `git` once, before any load; every
//! reading that fails becomes `"unknown"` (or `None`) rather than an error, since the numbers are
//! still worth having without it. Parsing is in pure functions, tested on fixed texts.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The machine the suite ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostInfo {
    /// `model name` of `/proc/cpuinfo` (`"AMD EPYC 7763 64-Core Processor"`).
    pub cpu_model: String,
    /// Logical CPUs the kernel lists (`processor` entries of `/proc/cpuinfo`).
    pub logical_cpus: usize,
    /// CPUs this process may run on (cpuset and cgroup quota applied): what the generator,
    /// the proxies and the backends shared.
    pub usable_cpus: usize,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os: String,
    /// The 1, 5 and 15 minute load averages when the suite started (`/proc/loadavg`): other
    /// work on the machine shows here.
    pub load_average: String,
}

impl HostInfo {
    /// Reads the running machine's facts.
    pub fn read() -> HostInfo {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let first_line = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
                .filter(|l| !l.is_empty())
                .unwrap_or_else(unknown)
        };
        HostInfo {
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(unknown),
            logical_cpus: count_processors(&cpuinfo),
            usable_cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: first_line("/proc/sys/kernel/osrelease"),
            os: std::fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|t| os_pretty_name(&t))
                .unwrap_or_else(unknown),
            load_average: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|t| load_average(&t))
                .unwrap_or_else(unknown),
        }
    }
}

fn unknown() -> String {
    "unknown".to_string()
}

/// The first `model name` of a `/proc/cpuinfo` text (x86), else its `Model` or `Hardware`
/// line (ARM boards); whitespace collapsed.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name && !v.trim().is_empty())
                .then(|| v.split_whitespace().collect::<Vec<_>>().join(" "))
        })
    };
    field("model name")
        .or_else(|| field("Model"))
        .or_else(|| field("Hardware"))
}

/// How many `processor` entries a `/proc/cpuinfo` text lists.
pub fn count_processors(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(k, _)| k.trim() == "processor")
        })
        .count()
}

/// `PRETTY_NAME` of an os-release text, unquoted.
pub fn os_pretty_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|l| {
        let v = l.strip_prefix("PRETTY_NAME=")?;
        let v = v.trim().trim_matches('"').trim_matches('\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// The three load averages of a `/proc/loadavg` text (`"0.52 0.58 0.59"`).
pub fn load_average(loadavg: &str) -> Option<String> {
    let fields: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    (fields.len() == 3 && fields.iter().all(|f| f.parse::<f64>().is_ok())).then(|| fields.join(" "))
}

/// `unix_s` as an RFC 3339 UTC timestamp to the second (`"2026-11-22T14:45:00Z"`).
pub fn utc_timestamp(unix_s: u64) -> String {
    let days = unix_s / 86_400;
    let rem = unix_s % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Now, as [`utc_timestamp`] writes it.
pub fn now_utc() -> String {
    utc_timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Year, month, day of the proleptic Gregorian calendar for `days` since 1970-01-01
/// (H. Hinnant's `civil_from_days`, for days ≥ 0).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The `torii` binary the suite measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ToriiBuild {
    /// `torii --version` (`"torii 0.1.0"`).
    pub version: String,
    /// The binary's path as given or found (`target/release/torii` says the build profile).
    pub binary: String,
    /// `git rev-parse HEAD` of the work tree holding the binary (`target/` sits inside the
    /// checkout it was built from); `None` when the binary is outside a git work tree.
    pub git_commit: Option<String>,
    /// Whether that work tree had uncommitted changes to tracked files (`git status`): the
    /// binary may then differ from the commit.
    pub git_dirty: bool,
}

impl ToriiBuild {
    /// Asks `torii --version` and `git` about `torii`.
    pub fn read(torii: &Path) -> ToriiBuild {
        let output = |cmd: &mut Command| {
            cmd.output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let version = output(Command::new(torii).arg("--version"))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(unknown);
        let dir = std::fs::canonicalize(torii)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let git = |args: &[&str]| {
            let dir = dir.as_ref()?;
            output(Command::new("git").arg("-C").arg(dir).args(args))
        };
        let git_commit = git(&["rev-parse", "HEAD"]).filter(|c| is_commit_id(c));
        let git_dirty = git_commit.is_some()
            && git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
        ToriiBuild {
            version,
            binary: torii.display().to_string(),
            git_commit,
            git_dirty,
        }
    }

    /// `"0123abcd"` (`"0123abcd + uncommitted changes"`), or `"unknown"`.
    pub fn commit_label(&self) -> String {
        match &self.git_commit {
            None => unknown(),
            Some(c) => {
                let short: String = c.chars().take(12).collect();
                if self.git_dirty {
                    format!("{short} + uncommitted changes")
                } else {
                    short
                }
            }
        }
    }
}

/// 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
fn is_commit_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `nginx -v` (`"nginx/1.22.1"`; nginx prints it on stderr), or `"unknown"`.
pub fn nginx_version(nginx: &Path) -> String {
    Command::new(nginx)
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stderr).into_owned();
            text.lines()
                .find_map(|l| l.trim().strip_prefix("nginx version: ").map(str::to_string))
        })
        .unwrap_or_else(unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO_X86: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763  64-Core Processor\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7763  64-Core Processor\n";
    const CPUINFO_ARM: &str = "processor\t: 0\nBogoMIPS\t: 108.00\n\nprocessor\t: 1\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";

    #[test]
    fn cpu_facts_are_read_from_cpuinfo() {
        assert_eq!(
            cpu_model(CPUINFO_X86).as_deref(),
            Some("AMD EPYC 7763 64-Core Processor")
        );
        assert_eq!(count_processors(CPUINFO_X86), 2);
        assert_eq!(
            cpu_model(CPUINFO_ARM).as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.4")
        );
        assert_eq!(count_processors(CPUINFO_ARM), 2);
        assert_eq!(cpu_model("flags : x\n"), None);
        assert_eq!(count_processors(""), 0);
    }

    #[test]
    fn os_release_and_loadavg_are_parsed() {
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(
            os_pretty_name(os).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(os_pretty_name("ID=x\n"), None);
        assert_eq!(
            load_average("0.52 0.58 0.59 1/190 12345\n").as_deref(),
            Some("0.52 0.58 0.59")
        );
        assert_eq!(load_average("garbage"), None);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc_timestamp(4_102_444_799), "2099-12-31T23:59:59Z");
        assert!(now_utc().starts_with("20") && now_utc().ends_with('Z'));
    }

    #[test]
    fn the_commit_label_says_when_the_tree_was_dirty() {
        let mut b = ToriiBuild {
            version: "torii 0.1.0".into(),
            binary: "target/release/torii".into(),
            git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            git_dirty: false,
        };
        assert_eq!(b.commit_label(), "0123456789ab");
        b.git_dirty = true;
        assert_eq!(b.commit_label(), "0123456789ab + uncommitted changes");
        b.git_commit = None;
        assert_eq!(b.commit_label(), "unknown");
        assert!(is_commit_id("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit_id("HEAD"));
    }

    #[test]
    fn this_machine_is_described() {
        let h = HostInfo::read();
        assert!(h.logical_cpus >= 1 && h.usable_cpus >= 1, "{h:?}");
        assert_ne!(h.kernel, "unknown");
        assert_ne!(h.load_average, "unknown");
    }

    #[test]
    fn a_binary_in_a_git_work_tree_gets_its_commit_and_dirty_state() {
        let dir = crate::suite::procs::TempDir::new().unwrap();
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .arg("-C")
                .arg(&dir.path)
                .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        git(&["init", "-q"]);
        std::fs::write(dir.path.join("tracked"), "1").unwrap();
        git(&["add", "tracked"]);
        git(&["commit", "-q", "-m", "one"]);
        let head = git(&["rev-parse", "HEAD"]);
        // A file that is not executable: `--version` fails, the commit is still found.
        std::fs::create_dir_all(dir.path.join("target/release")).unwrap();
        let bin = dir.path.join("target/release/torii");
        std::fs::write(&bin, "not a program").unwrap();
        let clean = ToriiBuild::read(&bin);
        assert_eq!(clean.version, "unknown");
        assert_eq!(clean.git_commit.as_deref(), Some(head.as_str()));
        assert!(!clean.git_dirty, "{clean:?}");
        std::fs::write(dir.path.join("tracked"), "2").unwrap();
        assert!(ToriiBuild::read(&bin).git_dirty);
        let outside = ToriiBuild::read(Path::new("/nonexistent/torii"));
        assert_eq!(
            (outside.version.as_str(), outside.git_commit),
            ("unknown", None)
        );
    }
}
