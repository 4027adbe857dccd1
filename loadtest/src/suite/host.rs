//! What the suite's report says about where and when it ran: the machine (CPU model, logical
//! CPUs and how many the suite may use, kernel, distribution, load average at the start), the
//! date in UTC, and the `torii` binary measured (its version, path and the git commit it was
//! built from: the work tree holding it, or — when it sits beside `torii-loadtest` in a target
//! directory outside the checkout, `CARGO_TARGET_DIR` — the checkout `torii-loadtest` was
//! built from, which `build.rs` names at build time).
//!
//! Reads `/proc`, `/etc/os-release`, `torii --version` and `git` once, before any load; every
//! reading that fails becomes `"unknown"` (or `None`) rather than an error, since the numbers are
//! still worth having without it. Parsing is in pure functions, tested on fixed texts.

use std::path::{Path, PathBuf};
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
    /// The commit the binary was built from, as `git rev-parse HEAD` names it ([`Self::commit_source`]
    /// says which checkout was asked); `None` when none could be asked.
    pub git_commit: Option<String>,
    /// Whether that checkout had uncommitted changes to tracked files (`git status`): the
    /// binary may then differ from the commit.
    pub git_dirty: bool,
    /// Where [`Self::git_commit`] came from.
    pub commit_source: CommitSource,
}

/// Where the commit of a [`ToriiBuild`] came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitSource {
    /// Nowhere: the binary is outside any git work tree and not beside `torii-loadtest`.
    #[default]
    Unknown,
    /// The git work tree the binary sits in (`target/` inside the checkout it was built from).
    BinaryWorkTree,
    /// The binary sits beside `torii-loadtest` (one `cargo build`, one target directory,
    /// possibly outside the checkout) and this is the checkout `torii-loadtest` was built from,
    /// asked now.
    LoadtestCheckout,
    /// As [`CommitSource::LoadtestCheckout`], but that checkout is gone: the commit `build.rs`
    /// recorded when `torii-loadtest` was built (the dirty state is then unknown).
    LoadtestBuild,
}

/// The checkout a `torii-loadtest` binary was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// A directory inside it (the crate's manifest directory at build time).
    pub dir: PathBuf,
    /// `git rev-parse HEAD` there at build time, when git could answer.
    pub commit_at_build: Option<String>,
}

impl Checkout {
    /// The checkout this binary was built from.
    pub fn of_this_build() -> Checkout {
        Checkout {
            dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            commit_at_build: option_env!("TORII_LOADTEST_GIT_COMMIT")
                .filter(|c| is_commit_id(c))
                .map(str::to_string),
        }
    }
}

/// Whether `torii` sits in the directory of the executable `exe` (or the one above, for test
/// binaries in `deps/`): then both came out of one target directory, one build.
pub fn built_beside(torii: &Path, exe: &Path) -> bool {
    let parent = |p: &Path| {
        std::fs::canonicalize(p)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
    };
    match (parent(torii), parent(exe)) {
        (Some(t), Some(e)) => e.ancestors().take(2).any(|d| d == t),
        _ => false,
    }
}

/// Runs `cmd`; its trimmed stdout when it succeeded.
fn output(cmd: &mut Command) -> Option<String> {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// `git rev-parse HEAD` in `dir` and whether its tracked files have uncommitted changes;
/// `None` outside a work tree or without git.
fn git_state(dir: &Path) -> Option<(String, bool)> {
    let git = |args: &[&str]| output(Command::new("git").arg("-C").arg(dir).args(args));
    let commit = git(&["rev-parse", "HEAD"]).filter(|c| is_commit_id(c))?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some((commit, dirty))
}

impl ToriiBuild {
    /// Asks `torii --version` and `git` about `torii`.
    pub fn read(torii: &Path) -> ToriiBuild {
        let beside = std::env::current_exe().is_ok_and(|exe| built_beside(torii, &exe));
        ToriiBuild::read_with(torii, beside.then(Checkout::of_this_build).as_ref())
    }

    /// As [`Self::read`], `checkout` being the one `torii` was built from when known (it sits
    /// beside `torii-loadtest`); else the work tree holding the binary is asked.
    pub fn read_with(torii: &Path, checkout: Option<&Checkout>) -> ToriiBuild {
        let version = output(Command::new(torii).arg("--version"))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(unknown);
        let binary_dir = std::fs::canonicalize(torii)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let from_checkout = checkout.and_then(|c| {
            git_state(&c.dir)
                .map(|(commit, dirty)| (commit, dirty, CommitSource::LoadtestCheckout))
                .or_else(|| {
                    let commit = c.commit_at_build.clone()?;
                    Some((commit, false, CommitSource::LoadtestBuild))
                })
        });
        let found = from_checkout.or_else(|| {
            let (commit, dirty) = git_state(binary_dir.as_deref()?)?;
            Some((commit, dirty, CommitSource::BinaryWorkTree))
        });
        let (git_commit, git_dirty, commit_source) = match found {
            Some((commit, dirty, source)) => (Some(commit), dirty, source),
            None => (None, false, CommitSource::Unknown),
        };
        ToriiBuild {
            version,
            binary: torii.display().to_string(),
            git_commit,
            git_dirty,
            commit_source,
        }
    }

    /// `"0123abcd"` (`"0123abcd + uncommitted changes"`), `"0123abcd (when torii-loadtest was
    /// built)"` when only the build's record was left, or `"unknown"`.
    pub fn commit_label(&self) -> String {
        match &self.git_commit {
            None => unknown(),
            Some(c) => {
                let short: String = c.chars().take(12).collect();
                if self.git_dirty {
                    format!("{short} + uncommitted changes")
                } else if self.commit_source == CommitSource::LoadtestBuild {
                    format!("{short} (when torii-loadtest was built)")
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
            commit_source: CommitSource::BinaryWorkTree,
        };
        assert_eq!(b.commit_label(), "0123456789ab");
        b.git_dirty = true;
        assert_eq!(b.commit_label(), "0123456789ab + uncommitted changes");
        b.git_dirty = false;
        b.commit_source = CommitSource::LoadtestBuild;
        assert_eq!(
            b.commit_label(),
            "0123456789ab (when torii-loadtest was built)"
        );
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

    /// `git init` in `dir` with one commit of `tracked`; returns the commit.
    fn git_repo(dir: &Path) -> String {
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        std::fs::create_dir_all(dir).unwrap();
        git(&["init", "-q"]);
        std::fs::write(dir.join("tracked"), "1").unwrap();
        git(&["add", "tracked"]);
        git(&["commit", "-q", "-m", "one"]);
        git(&["rev-parse", "HEAD"])
    }

    /// A file named `torii` in `dir` that is not a program: `--version` fails.
    fn fake_torii(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let bin = dir.join("torii");
        std::fs::write(&bin, "not a program").unwrap();
        bin
    }

    #[test]
    fn a_binary_in_a_git_work_tree_gets_its_commit_and_dirty_state() {
        let dir = crate::suite::procs::TempDir::new().unwrap();
        let head = git_repo(&dir.path);
        let bin = fake_torii(&dir.path.join("target/release"));
        let clean = ToriiBuild::read(&bin);
        assert_eq!(clean.version, "unknown");
        assert_eq!(clean.git_commit.as_deref(), Some(head.as_str()));
        assert_eq!(clean.commit_source, CommitSource::BinaryWorkTree);
        assert!(!clean.git_dirty, "{clean:?}");
        std::fs::write(dir.path.join("tracked"), "2").unwrap();
        assert!(ToriiBuild::read(&bin).git_dirty);
        let outside = ToriiBuild::read(Path::new("/nonexistent/torii"));
        assert_eq!(
            (outside.version.as_str(), outside.git_commit),
            ("unknown", None)
        );
        assert_eq!(outside.commit_source, CommitSource::Unknown);
    }

    #[test]
    fn a_binary_beside_torii_loadtest_gets_the_commit_of_its_checkout() {
        // CARGO_TARGET_DIR outside the checkout: the binary's directory is no work tree.
        let tmp = crate::suite::procs::TempDir::new().unwrap();
        let checkout = tmp.path.join("checkout");
        let head = git_repo(&checkout);
        let bin = fake_torii(&tmp.path.join("elsewhere/release"));
        assert_eq!(ToriiBuild::read(&bin).git_commit, None);
        let this = Checkout {
            dir: checkout.join("loadtest"),
            commit_at_build: Some("ab".repeat(20)),
        };
        std::fs::create_dir_all(&this.dir).unwrap();
        let b = ToriiBuild::read_with(&bin, Some(&this));
        assert_eq!(b.git_commit.as_deref(), Some(head.as_str()), "{b:?}");
        assert_eq!(b.commit_source, CommitSource::LoadtestCheckout);
        assert!(!b.git_dirty);
        std::fs::write(checkout.join("tracked"), "2").unwrap();
        assert!(ToriiBuild::read_with(&bin, Some(&this)).git_dirty);
        // The checkout is gone: what build.rs recorded, labelled as such.
        std::fs::remove_dir_all(&checkout).unwrap();
        let b = ToriiBuild::read_with(&bin, Some(&this));
        assert_eq!(b.git_commit, Some("ab".repeat(20)));
        assert_eq!(b.commit_source, CommitSource::LoadtestBuild);
        assert!(b
            .commit_label()
            .ends_with("(when torii-loadtest was built)"));
        let nothing = Checkout {
            commit_at_build: None,
            ..this
        };
        let b = ToriiBuild::read_with(&bin, Some(&nothing));
        assert_eq!(
            (b.git_commit, b.commit_source),
            (None, CommitSource::Unknown)
        );
    }

    #[test]
    fn a_binary_beside_this_test_gets_the_commit_of_this_checkout() {
        // What `read` does for a torii built with this crate, wherever the target directory is.
        let exe = std::env::current_exe().unwrap();
        let bin = exe.with_file_name(format!("torii-host-test-{}", std::process::id()));
        std::fs::write(&bin, "not a program").unwrap();
        let b = ToriiBuild::read(&bin);
        std::fs::remove_file(&bin).unwrap();
        let this = Checkout::of_this_build();
        match git_state(&this.dir) {
            Some((commit, _)) => {
                assert_eq!(b.git_commit, Some(commit));
                assert_eq!(b.commit_source, CommitSource::LoadtestCheckout);
            }
            None => assert_eq!(b.git_commit, this.commit_at_build),
        }
    }

    #[test]
    fn beside_means_the_same_target_directory() {
        let tmp = crate::suite::procs::TempDir::new().unwrap();
        let release = tmp.path.join("target/release");
        let torii = fake_torii(&release);
        let touch = |p: &Path| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        };
        let loadtest = release.join("torii-loadtest");
        let test_binary = release.join("deps/torii_loadtest-0123");
        let other = tmp.path.join("target/debug/torii-loadtest");
        for p in [&loadtest, &test_binary, &other] {
            touch(p);
        }
        assert!(built_beside(&torii, &loadtest));
        assert!(built_beside(&torii, &test_binary));
        assert!(!built_beside(&torii, &other));
        assert!(!built_beside(Path::new("/nonexistent/torii"), &loadtest));
        // build.rs recorded a commit of this checkout (Cargo runs it again when HEAD moves): the
        // one HEAD is at, or an ancestor of it when a commit came between the build and this
        // run; nothing where git cannot answer (a source tarball).
        let this = Checkout::of_this_build();
        assert!(this.dir.ends_with("loadtest"));
        match (&this.commit_at_build, git_state(&this.dir)) {
            (None, None) => {}
            (Some(recorded), Some((head, _))) => {
                let ancestor = std::process::Command::new("git")
                    .args(["merge-base", "--is-ancestor", recorded, &head])
                    .current_dir(&this.dir)
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ancestor, "recorded {recorded}, HEAD {head}");
            }
            (recorded, now) => panic!("recorded {recorded:?}, git says {now:?}"),
        }
    }
}
