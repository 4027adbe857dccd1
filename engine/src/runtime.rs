//! Thread-per-core runtime: listener sockets, worker threads, IO driver selection, pinning.
//!
//! Owns process start-up mechanics shared by the gateway and the mirror: every address gets one
//! `SO_REUSEPORT` listener per worker (so the kernel spreads connections over the cores), after
//! a probe bind without `SO_REUSEPORT` that fails when another process already serves the port;
//! every worker runs its own monoio runtime on io_uring when the kernel allows it and on epoll
//! otherwise (also when the probe passes but building the ring fails), pinned to one of the CPUs
//! the process may use (worker *i* to the *i*-th, [`crate::cpus`]). With
//! `connection_steering = "cpu"` a reuseport BPF program hands each connection to the worker
//! pinned to the CPU that received it.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;

use monoio::time::TimeDriver;
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::ConnectionSteering;
use crate::cpus::{allowed_cpus, pin_worker, worker_cpu};

/// Submission-queue entries of each worker's io_uring.
const URING_ENTRIES: u32 = 1024;
/// Listen backlog of each listener socket.
const BACKLOG: i32 = 4096;

/// Why listeners could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another process already listens on the address.
    #[error("{addr}: address already in use: another process listens on it (another torii?) or a connection still holds the port")]
    InUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Any other socket error.
    #[error("{addr}: {source}")]
    Io {
        /// The address asked for.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
}

/// Listener sockets for every worker: `per_worker[w]` holds one socket per address.
#[derive(Debug)]
pub struct BoundListeners {
    /// Sockets handed to each worker.
    pub per_worker: Vec<Vec<StdListener>>,
    /// The addresses actually bound (port 0 resolved), in config order.
    pub addrs: Vec<SocketAddr>,
}

fn io_err(addr: SocketAddr) -> impl Fn(io::Error) -> BindError {
    move |source| BindError::Io { addr, source }
}

fn new_socket(addr: SocketAddr) -> Result<Socket, BindError> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(io_err(addr))?;
    socket.set_reuse_address(true).map_err(io_err(addr))?;
    socket.set_nonblocking(true).map_err(io_err(addr))?;
    Ok(socket)
}

/// Fails with [`BindError::InUse`] when some other socket already listens on `addr`: a bind
/// without `SO_REUSEPORT` fails then, whatever options the other socket has.
fn probe_free(addr: SocketAddr) -> Result<(), BindError> {
    if addr.port() == 0 {
        return Ok(());
    }
    let socket = new_socket(addr)?;
    match socket.bind(&addr.into()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(BindError::InUse { addr }),
        Err(e) => Err(BindError::Io { addr, source: e }),
    }
}

/// Binds `workers` `SO_REUSEPORT` listeners on each address. Port 0 is resolved by the first
/// socket and reused for the others, so every worker listens on the same port. `steering`
/// chooses how the kernel spreads new connections over them (`gateway.connection_steering`).
pub fn bind_listeners(
    addrs: &[SocketAddr],
    workers: usize,
    steering: ConnectionSteering,
) -> Result<BoundListeners, BindError> {
    let mut per_worker: Vec<Vec<StdListener>> = (0..workers)
        .map(|_| Vec::with_capacity(addrs.len()))
        .collect();
    let mut bound = Vec::with_capacity(addrs.len());
    for &asked in addrs {
        probe_free(asked)?;
        let mut addr = asked;
        for list in per_worker.iter_mut() {
            let socket = new_socket(addr)?;
            socket.set_reuse_port(true).map_err(io_err(addr))?;
            socket.bind(&addr.into()).map_err(|e| match e.kind() {
                io::ErrorKind::AddrInUse => BindError::InUse { addr },
                _ => BindError::Io { addr, source: e },
            })?;
            socket.listen(BACKLOG).map_err(io_err(addr))?;
            if addr.port() == 0 {
                addr = socket
                    .local_addr()
                    .map_err(io_err(addr))?
                    .as_socket()
                    .ok_or_else(|| io_err(asked)(io::Error::other("not an inet socket")))?;
            }
            list.push(socket.into());
        }
        if steering == ConnectionSteering::Cpu {
            // One program per reuseport group: attached to any of its sockets, it applies to
            // the whole group. Socket `w` of the group is worker `w`'s (bind order), and worker
            // `w` is pinned to the `w`-th allowed CPU (`spawn_workers`).
            let cpus = allowed_cpus();
            let pinned: Vec<usize> = (0..workers.min(cpus.len()))
                .filter_map(|w| worker_cpu(w, &cpus))
                .collect();
            if let Some(first) = per_worker.first().and_then(|l| l.last()) {
                steer_by_cpu(first, &pinned).map_err(io_err(addr))?;
            }
        }
        bound.push(addr);
    }
    Ok(BoundListeners {
        per_worker,
        addrs: bound,
    })
}

/// How a worker's io_uring is set up: which task-work mode the kernel accepted.
///
/// By default the kernel runs a ring's completion work ("task work") as soon as it is queued,
/// interrupting the thread (an IPI when it runs elsewhere); on loopback that is the instant a
/// peer's `send` wakes us, while that peer's CPU still holds the socket lock, so the receive
/// spins on it. `Deferred` (Linux ≥ 6.1) queues that work until the worker next enters the
/// ring to wait (monoio does so only when it has nothing left to run), so completions are run
/// in batches, without interrupts and without the lock contention; `Cooperative` (≥ 5.19)
/// skips the interrupt but still runs the work at the next kernel transition. Measured in
/// `docs/performance.md` ("io_uring task-work mode").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingSetup {
    /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`.
    Deferred,
    /// `IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG`.
    Cooperative,
    /// No task-work flags (the kernel's default).
    Plain,
}

impl RingSetup {
    /// Every setup, best first.
    pub const ALL: [RingSetup; 3] = [
        RingSetup::Deferred,
        RingSetup::Cooperative,
        RingSetup::Plain,
    ];

    /// Setups to try, best first, for a `TORII_URING_SETUP` value: `cooperative` or `plain`
    /// starts the list lower (for comparisons, or a kernel that misbehaves with a mode it
    /// accepts); anything else, or no value, tries them all.
    pub fn candidates(env_value: Option<&str>) -> &'static [RingSetup] {
        let first = match env_value {
            Some("cooperative") => 1,
            Some("plain") => 2,
            _ => 0,
        };
        &Self::ALL[first..]
    }

    /// The setup's name, as logged (`ring_setup=`).
    pub fn name(self) -> &'static str {
        match self {
            RingSetup::Deferred => "deferred",
            RingSetup::Cooperative => "cooperative",
            RingSetup::Plain => "plain",
        }
    }

    fn builder(self) -> io_uring::Builder {
        let mut b = io_uring::IoUring::builder();
        match self {
            RingSetup::Deferred => {
                b.setup_single_issuer().setup_defer_taskrun();
            }
            RingSetup::Cooperative => {
                b.setup_coop_taskrun().setup_taskrun_flag();
            }
            RingSetup::Plain => {}
        }
        b
    }
}

/// `SO_ATTACH_REUSEPORT_CBPF` (the same value on every Linux architecture Torii builds for).
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// Makes the kernel give a new connection to the listener of the worker pinned to the CPU that
/// processed the connection's SYN: `worker_cpus[w]` is worker `w`'s CPU. The classic BPF
/// program compares that CPU with each worker's and returns the index of the match; a CPU that
/// is no worker's (outside the process's mask, or when pinning is off) gets an index past the
/// group, and the kernel then picks a listener by its usual hash. With one worker per allowed
/// CPU, a connection is served on the core that receives its packets: no cross-core wake-ups
/// or cache traffic for it.
fn steer_by_cpu(socket: &impl std::os::fd::AsRawFd, worker_cpus: &[usize]) -> io::Result<()> {
    // Classic BPF programs hold at most 4096 instructions (BPF_MAXINSNS): 2 per worker + 2.
    if worker_cpus.len() > 2000 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many workers for CPU steering",
        ));
    }
    let insn = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let mut prog = Vec::with_capacity(2 * worker_cpus.len() + 2);
    // A = the CPU that runs the program (the one processing the SYN).
    prog.push(insn(
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        0,
        0,
        (libc::SKF_AD_OFF + libc::SKF_AD_CPU) as u32,
    ));
    for (w, &cpu) in worker_cpus.iter().enumerate() {
        // if A == cpu { return w } (else skip the return).
        prog.push(insn(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            1,
            cpu as u32,
        ));
        prog.push(insn(libc::BPF_RET | libc::BPF_K, 0, 0, w as u32));
    }
    // No worker on this CPU: an index past the group makes the kernel hash instead.
    prog.push(insn(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX));
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `prog`, both alive for the call; the kernel copies the
    // program; the fd is a valid socket borrowed from `socket`.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A worker's runtime, on whichever driver could be built.
pub enum AnyRuntime {
    /// io_uring, set up as the kernel allowed.
    Uring(monoio::Runtime<TimeDriver<IoUringDriver>>, RingSetup),
    /// epoll (monoio's "legacy" driver).
    Legacy(monoio::Runtime<TimeDriver<LegacyDriver>>),
}

impl std::fmt::Debug for AnyRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.driver_name())
    }
}

impl AnyRuntime {
    /// Builds io_uring when the kernel supports the operations monoio needs (and
    /// `MONOIO_FORCE_LEGACY_DRIVER` is not set), with the best [`RingSetup`] the kernel
    /// accepts, falling back to epoll when the probe fails *or* when building the ring itself
    /// fails in every setup (seccomp, memlock limits). Must run on the thread that will drive
    /// the runtime: a `Deferred` ring only accepts submissions from the thread that built it.
    pub fn build() -> io::Result<Self> {
        let env = std::env::var("TORII_URING_SETUP").ok();
        Self::build_with(RingSetup::candidates(env.as_deref()))
    }

    /// [`AnyRuntime::build`] trying only `setups`, in order, before epoll.
    pub fn build_with(setups: &[RingSetup]) -> io::Result<Self> {
        if monoio::utils::detect_uring() {
            let mut last_err = None;
            for &setup in setups {
                match RuntimeBuilder::<IoUringDriver>::new()
                    .with_entries(URING_ENTRIES)
                    .uring_builder(setup.builder())
                    .enable_timer()
                    .build()
                {
                    Ok(rt) => return Ok(AnyRuntime::Uring(rt, setup)),
                    Err(e) => {
                        tracing::debug!(ring_setup = setup.name(), error = %e, "io_uring setup refused by the kernel");
                        last_err = Some(e);
                    }
                }
            }
            if let Some(e) = last_err {
                tracing::warn!(error = %e, "io_uring probe passed but the ring could not be built; using epoll");
            }
        }
        let rt = RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .build()?;
        Ok(AnyRuntime::Legacy(rt))
    }

    /// An epoll runtime whatever the kernel offers: for a thread that sleeps most of the time
    /// and opens a few connections now and then (the health checker), where a ring would only
    /// cost memory.
    pub fn build_legacy() -> io::Result<Self> {
        let rt = RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .build()?;
        Ok(AnyRuntime::Legacy(rt))
    }

    /// `io_uring` or `epoll`.
    pub fn driver_name(&self) -> &'static str {
        match self {
            AnyRuntime::Uring(..) => "io_uring",
            AnyRuntime::Legacy(_) => "epoll",
        }
    }

    /// The io_uring setup in use, `None` on epoll.
    pub fn ring_setup(&self) -> Option<RingSetup> {
        match self {
            AnyRuntime::Uring(_, setup) => Some(*setup),
            AnyRuntime::Legacy(_) => None,
        }
    }

    /// Runs `fut` to completion on this runtime.
    pub fn block_on<F: Future>(&mut self, fut: F) -> F::Output {
        match self {
            AnyRuntime::Uring(rt, _) => rt.block_on(fut),
            AnyRuntime::Legacy(rt) => rt.block_on(fut),
        }
    }
}

/// Builds the future a worker runs, on the worker's own thread (it need not be `Send`).
pub type WorkerMain = dyn Fn(usize, &'static str, Vec<monoio::net::TcpListener>) -> Pin<Box<dyn Future<Output = ()>>>
    + Send
    + Sync;

/// Starts one thread per entry of `listeners`, worker *i* pinned to the *i*-th CPU the process
/// may use (when `pin`; see [`crate::cpus`]), each with its own runtime, running
/// `main(worker_id, driver_name, listeners)`. Threads are named `{name}-{i}`; each logs
/// `worker started` with `component` (`gateway`, `mirror`), so that a process running both (the
/// demo) tells them apart.
pub fn spawn_workers(
    name: &str,
    component: &'static str,
    listeners: Vec<Vec<StdListener>>,
    pin: bool,
    main: Arc<WorkerMain>,
) -> io::Result<Vec<JoinHandle<()>>> {
    let cpus: Arc<[usize]> = allowed_cpus().into();
    let mut handles = Vec::with_capacity(listeners.len());
    for (id, socks) in listeners.into_iter().enumerate() {
        let main = main.clone();
        let cpus = cpus.clone();
        let handle = std::thread::Builder::new().name(format!("{name}-{id}")).spawn(move || {
            if let Some(cpu) = worker_cpu(id, &cpus).filter(|_| pin) {
                pin_worker(id, cpu);
            }
            let mut rt = match AnyRuntime::build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(worker = id, error = %e, "could not build a runtime");
                    return;
                }
            };
            let driver = rt.driver_name();
            let ring_setup = rt.ring_setup().map_or("-", RingSetup::name);
            tracing::info!(component, worker = id, driver, ring_setup, "worker started");
            rt.block_on(async move {
                let mut converted = Vec::with_capacity(socks.len());
                for s in socks {
                    match monoio::net::TcpListener::from_std(s) {
                        Ok(l) => converted.push(l),
                        Err(e) => {
                            tracing::error!(worker = id, error = %e, "listener rejected by the runtime");
                            return;
                        }
                    }
                }
                main(id, driver, converted).await;
            });
        })?;
        handles.push(handle);
    }
    Ok(handles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpus::pin_current_thread;

    #[test]
    fn second_bind_on_a_served_port_fails_clearly() {
        let first = bind_listeners(
            &["127.0.0.1:0".parse().unwrap()],
            2,
            ConnectionSteering::Hash,
        )
        .unwrap();
        let addr = first.addrs[0];
        assert_ne!(addr.port(), 0);
        assert_eq!(first.per_worker.len(), 2);
        for list in &first.per_worker {
            assert_eq!(list[0].local_addr().unwrap(), addr);
        }
        let err = bind_listeners(&[addr], 1, ConnectionSteering::Hash).unwrap_err();
        assert!(matches!(err, BindError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("already in use"));
    }

    /// Which of `listeners` has a connection waiting (non-blocking accept on each).
    fn accepting(listeners: &[Vec<StdListener>]) -> Vec<usize> {
        let mut got = Vec::new();
        for (w, l) in listeners.iter().enumerate() {
            l[0].set_nonblocking(true).unwrap();
            while l[0].accept().is_ok() {
                got.push(w);
            }
        }
        got
    }

    /// With `cpu` steering a loopback connection goes to the worker pinned to the CPU the
    /// connecting thread runs on (its SYN is processed there): worker `w` is the `w`-th allowed
    /// CPU's. With `hash` both workers get some of 64.
    #[test]
    fn cpu_steering_gives_a_connection_to_the_worker_of_its_cpu() {
        let cpus = allowed_cpus();
        if cpus.len() < 2 {
            // Not a silent pass: allowed only when the environment says so.
            assert!(
                skip_allowed("cpus"),
                "needs two CPUs this process may run on (it has {cpus:?}); set \
                 TORII_ALLOW_SKIP=cpus to skip on purpose (docs/testing.md)"
            );
            eprintln!("SKIPPED (cpus, allowed by TORII_ALLOW_SKIP): needs two usable CPUs");
            return;
        }
        let result = std::thread::spawn(move || {
            let pin = |cpu: usize| assert!(pin_current_thread(cpu).is_ok(), "pin to {cpu}");
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let bound = bind_listeners(&[any], 2, ConnectionSteering::Cpu).unwrap();
            let addr = bound.addrs[0];
            let mut keep = Vec::new();
            for worker in [0usize, 1, 1, 0, 1] {
                pin(cpus[worker]);
                keep.push(std::net::TcpStream::connect(addr).unwrap());
                std::thread::sleep(std::time::Duration::from_millis(20));
                assert_eq!(
                    accepting(&bound.per_worker),
                    [worker],
                    "connection made on CPU {}",
                    cpus[worker]
                );
            }
            let hashed = bind_listeners(&[any], 2, ConnectionSteering::Hash).unwrap();
            pin(cpus[0]);
            for _ in 0..64 {
                keep.push(std::net::TcpStream::connect(hashed.addrs[0]).unwrap());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            let got = accepting(&hashed.per_worker);
            assert_eq!(got.len(), 64);
            assert!(
                got.contains(&0) && got.contains(&1),
                "hash put all 64 on one worker"
            );
        })
        .join();
        assert!(result.is_ok(), "steering test thread failed");
    }

    /// A CPU that is no worker's falls back to the kernel's hash (never to a lost connection);
    /// a worker's CPU still gets its worker.
    #[test]
    fn cpu_steering_hashes_connections_from_cpus_without_a_worker() {
        let cpus = allowed_cpus();
        assert!(
            cpus.len() >= 2,
            "needs two usable CPUs, the process has {cpus:?}"
        );
        let result = std::thread::spawn(move || {
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let group = bind_listeners(&[any], 2, ConnectionSteering::Hash).unwrap();
            // Only worker 0 is on a CPU (cpus[0]); cpus[1] is nobody's.
            steer_by_cpu(&group.per_worker[0][0], &cpus[..1]).unwrap();
            let mut keep = Vec::new();
            assert!(pin_current_thread(cpus[1]).is_ok());
            for _ in 0..64 {
                keep.push(std::net::TcpStream::connect(group.addrs[0]).unwrap());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            let got = accepting(&group.per_worker);
            assert_eq!(got.len(), 64, "every connection was accepted");
            assert!(got.contains(&0) && got.contains(&1), "not hashed: {got:?}");
            assert!(pin_current_thread(cpus[0]).is_ok());
            for _ in 0..8 {
                keep.push(std::net::TcpStream::connect(group.addrs[0]).unwrap());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(accepting(&group.per_worker), [0; 8]);
        })
        .join();
        assert!(result.is_ok(), "steering test thread failed");
    }

    #[test]
    fn a_runtime_can_be_built() {
        let mut rt = AnyRuntime::build().unwrap();
        assert!(matches!(rt.driver_name(), "io_uring" | "epoll"));
        assert_eq!(rt.ring_setup().is_some(), rt.driver_name() == "io_uring");
        assert_eq!(rt.block_on(async { 41 + 1 }), 42);
    }

    #[test]
    fn setup_candidates_follow_the_environment_value() {
        use RingSetup::*;
        assert_eq!(RingSetup::candidates(None), [Deferred, Cooperative, Plain]);
        assert_eq!(
            RingSetup::candidates(Some("deferred")),
            [Deferred, Cooperative, Plain]
        );
        assert_eq!(
            RingSetup::candidates(Some("bogus")),
            [Deferred, Cooperative, Plain]
        );
        assert_eq!(
            RingSetup::candidates(Some("cooperative")),
            [Cooperative, Plain]
        );
        assert_eq!(RingSetup::candidates(Some("plain")), [Plain]);
    }

    /// True when `TORII_ALLOW_SKIP` (comma-separated, docs/testing.md) lists `name`.
    fn skip_allowed(name: &str) -> bool {
        std::env::var("TORII_ALLOW_SKIP")
            .unwrap_or_default()
            .split(',')
            .any(|n| n.trim() == name)
    }

    /// The setups the kernel must accept: `TORII_EXPECT_RING_SETUPS` (comma-separated names;
    /// `.ci/test` sets it from its own probe of io_uring_setup(2)) when set; none when
    /// `MONOIO_FORCE_LEGACY_DRIVER` forces epoll; `None` (every one) otherwise.
    fn expected_setups() -> Option<Vec<RingSetup>> {
        if let Ok(list) = std::env::var("TORII_EXPECT_RING_SETUPS") {
            let names: Vec<&str> = list.split(',').map(str::trim).collect();
            for n in names.iter().filter(|n| !n.is_empty()) {
                assert!(
                    RingSetup::ALL.iter().any(|s| s.name() == *n),
                    "TORII_EXPECT_RING_SETUPS: unknown setup {n:?}"
                );
            }
            return Some(
                RingSetup::ALL
                    .into_iter()
                    .filter(|s| names.contains(&s.name()))
                    .collect(),
            );
        }
        let forced = std::env::var("MONOIO_FORCE_LEGACY_DRIVER")
            .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
        forced.then(Vec::new)
    }

    /// Every setup the kernel accepts must deliver completions and fire timers: a loopback
    /// echo (accept, read, write on both sides), then a read that can only end by its timeout.
    /// Deferred task work is the risky one: its completions only arrive when the runtime
    /// enters the ring to wait, so a lost wake-up would hang here (the test then fails on its
    /// own 5 s guard instead of hanging).
    ///
    /// Which setups must be accepted is asserted, not assumed ([`expected_setups`]); a setup
    /// that is refused falls back to epoll, and the same IO runs there. Without an expectation
    /// in the environment every setup must be accepted, unless `TORII_ALLOW_SKIP` holds
    /// `ring-setup`.
    #[test]
    fn every_accepted_ring_setup_does_io_and_timers() {
        use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
        use std::time::Duration;
        let expected = expected_setups();
        for setup in RingSetup::ALL {
            let mut rt = AnyRuntime::build_with(&[setup]).unwrap();
            let accepted = rt.ring_setup() == Some(setup);
            match &expected {
                Some(list) => assert_eq!(
                    accepted,
                    list.contains(&setup),
                    "{}: accepted = {accepted} ({}), expected setups {list:?}",
                    setup.name(),
                    rt.driver_name()
                ),
                None if !accepted => {
                    assert!(
                        skip_allowed("ring-setup"),
                        "{}: refused here ({}); set TORII_EXPECT_RING_SETUPS to the setups this \
                         kernel offers, or TORII_ALLOW_SKIP=ring-setup (docs/testing.md)",
                        setup.name(),
                        rt.driver_name()
                    );
                    eprintln!("SKIPPED (ring-setup, allowed): {} refused", setup.name());
                }
                None => {}
            }
            if !accepted {
                assert_eq!(rt.driver_name(), "epoll", "{}: fallback", setup.name());
            }
            let done = rt.block_on(async {
                let work = async {
                    let listener = monoio::net::TcpListener::bind("127.0.0.1:0").unwrap();
                    let addr = listener.local_addr().unwrap();
                    let server = monoio::spawn(async move {
                        let (mut s, _) = listener.accept().await.unwrap();
                        for _ in 0..100 {
                            let (n, buf) = s.read(vec![0u8; 64]).await;
                            let n = n.unwrap();
                            let (r, _) = s.write_all(buf[..n].to_vec()).await;
                            r.unwrap();
                        }
                        s
                    });
                    let mut c = monoio::net::TcpStream::connect(addr).await.unwrap();
                    for i in 0..100u32 {
                        let msg = format!("ping {i}").into_bytes();
                        let (r, msg) = c.write_all(msg).await;
                        r.unwrap();
                        let (n, back) = c.read(vec![0u8; 64]).await;
                        assert_eq!(&back[..n.unwrap()], &msg[..]);
                    }
                    // The server is idle now: this read can only end by the timeout.
                    let mut quiet = server.await;
                    let t =
                        monoio::time::timeout(Duration::from_millis(50), quiet.read(vec![0u8; 8]));
                    assert!(t.await.is_err(), "the read should have timed out");
                };
                monoio::time::timeout(Duration::from_secs(5), work)
                    .await
                    .is_ok()
            });
            assert!(done, "{}: IO or timers stalled", setup.name());
        }
    }
}
