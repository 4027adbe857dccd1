//! CPU placement that respects the operator: a `torii run` started with a restricted CPU mask
//! (as `taskset -c N` or a cpuset would set it) keeps every worker inside the mask, worker *i* on
//! the *i*-th allowed CPU; `workers = "auto"` counts the allowed CPUs; `pin_workers = false`
//! leaves the workers on the whole mask. Checked from the outside, in /proc.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use common::process::{torii_bin, TempDir};

/// The CPUs the test process may use.
fn allowed_cpus() -> Vec<usize> {
    torii_engine::cpus::allowed_cpus()
}

/// Parses a `Cpus_allowed_list` value: `0-1,4,6-7`.
fn parse_list(list: &str) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap()),
            None => {
                out.insert(part.parse::<usize>().unwrap());
            }
        }
    }
    out
}

/// A `torii run` started with CPU mask `mask`; killed on drop.
struct Restricted {
    child: Child,
    log: Vec<String>,
}

impl Drop for Restricted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `torii run` on `config` with its CPU mask set to `mask` before exec, and waits until
/// `workers` workers have started (each logs once it is pinned and its runtime runs).
fn start(dir: &TempDir, config: &str, mask: &[usize], workers: usize) -> Restricted {
    let path = dir.write("torii.toml", config);
    let mask = mask.to_vec();
    let mut cmd = Command::new(torii_bin());
    cmd.args(["run", "--config", path.to_str().unwrap()])
        .env("TORII_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls: sched_setaffinity on the
    // child itself, with a cpu_set_t built on the stack (CPU_ZERO/CPU_SET are bit operations).
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_ZERO(&mut set);
            for &cpu in &mask {
                libc::CPU_SET(cpu, &mut set);
            }
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while log
        .iter()
        .filter(|l: &&String| l.contains("worker started"))
        .count()
        < workers
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => panic!("torii did not start {workers} workers: {log:#?}"),
        }
    }
    Restricted { child, log }
}

/// The allowed CPUs of each `torii-worker-N` thread of `pid`, by worker number.
fn worker_masks(pid: u32) -> Vec<(usize, BTreeSet<usize>)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(task.join("comm")) else {
            continue;
        };
        let Some(n) = comm.trim().strip_prefix("torii-worker-") else {
            continue;
        };
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap();
        out.push((n.parse().unwrap(), parse_list(list)));
    }
    out.sort();
    out
}

fn config(workers: &str, extra: &str) -> String {
    format!(
        "[gateway]\nworkers = {workers}\nhttp = [\"127.0.0.1:0\"]\nmax_connections_per_worker = 100\n{extra}\n\
         [[routes]]\nid = \"a\"\ndomains = [\"a.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n"
    )
}

#[test]
fn workers_stay_inside_a_one_cpu_mask() {
    let cpus = allowed_cpus();
    // The last CPU: with the old `worker i → CPU i` rule worker 0 would leave the mask.
    let only = *cpus.last().unwrap();
    let dir = TempDir::new("cpu-one");
    let torii = start(&dir, &config("3", ""), &[only], 3);
    let masks = worker_masks(torii.child.id());
    assert_eq!(masks.len(), 3, "{masks:?}");
    for (w, mask) in &masks {
        assert_eq!(
            mask,
            &BTreeSet::from([only]),
            "worker {w}: {:#?}",
            torii.log
        );
    }
    assert!(
        !torii.log.iter().any(|l| l.contains("could not pin")),
        "{:#?}",
        torii.log
    );
}

#[test]
fn auto_counts_the_allowed_cpus_and_worker_i_takes_the_ith() {
    let cpus = allowed_cpus();
    assert!(
        cpus.len() >= 2,
        "this test needs two CPUs in the test process's mask, it has {cpus:?}"
    );
    // The mask in reverse order of preference does not matter: the i-th allowed CPU, ascending.
    let mask = [cpus[cpus.len() - 1], cpus[0]];
    let mut ascending = mask;
    ascending.sort_unstable();
    let dir = TempDir::new("cpu-auto");
    let torii = start(&dir, &config("\"auto\"", ""), &mask, 2);
    assert!(
        torii.log.iter().any(|l| l.contains("2 workers")),
        "{:#?}",
        torii.log
    );
    let masks = worker_masks(torii.child.id());
    assert_eq!(
        masks,
        [
            (0, BTreeSet::from([ascending[0]])),
            (1, BTreeSet::from([ascending[1]]))
        ]
    );
    drop(torii);

    let dir = TempDir::new("cpu-auto-one");
    let torii = start(&dir, &config("\"auto\"", ""), &mask[..1], 1);
    assert!(
        torii.log.iter().any(|l| l.contains("1 worker,")),
        "{:#?}",
        torii.log
    );
}

#[test]
fn pin_workers_false_leaves_the_whole_mask() {
    let cpus = allowed_cpus();
    assert!(
        cpus.len() >= 2,
        "this test needs two CPUs in the test process's mask, it has {cpus:?}"
    );
    let mask = [cpus[0], cpus[1]];
    let dir = TempDir::new("cpu-unpinned");
    let torii = start(&dir, &config("2", "pin_workers = false"), &mask, 2);
    let masks = worker_masks(torii.child.id());
    assert_eq!(masks.len(), 2);
    for (w, m) in &masks {
        assert_eq!(m, &BTreeSet::from(mask), "worker {w}");
    }
}
