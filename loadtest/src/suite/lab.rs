//! The suite's processes, started in order and held until the suite ends: `torii mirror`
//! backends (plain, and V1/V2 challenge mirrors when the binary supports them), a
//! `redis-server` for the quota scenario when installed, the `torii run` gateway with its
//! generated config (plain and https listeners, token service, a plain and a metered API key,
//! an external issuer's RS256 key on the `jwt` route) and, when installed, nginx (plain and
//! TLS), the two proxies with the same number of workers.
//!
//! Owns start-up order, ports and secrets; every process is a [`ProcGuard`] in [`Lab::guards`],
//! killed on drop whether the suite succeeds or fails. It sends no load.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::config::{
    self, Backends, NginxTls, Security, APIKEY_SECRET_ENV, CLIENT_ID, METERED_CLIENT_ID,
    OAUTH_HOST, SECRET_ENV,
};
use super::host;
use super::issuer;
use super::procs::{find_on_path, free_port, ProcGuard};
use super::redis;
use super::results::Skipped;
use super::setup::{self, expect_status, new_secret, Pki};

/// How long a started process may take to listen.
const START_LIMIT: Duration = Duration::from_secs(10);
/// Worker threads of each `torii mirror` backend.
pub const MIRROR_WORKERS: usize = 1;

/// A process the suite started: its port and pid.
#[derive(Debug, Clone, Copy)]
pub struct Proc {
    /// Listening port (127.0.0.1).
    pub port: u16,
    /// Process id.
    pub pid: u32,
}

/// The gateway's listeners.
#[derive(Debug, Clone, Copy)]
pub struct Gateway {
    /// Plain listener.
    pub http: u16,
    /// TLS listener.
    pub https: u16,
    /// Process id.
    pub pid: u32,
}

/// nginx's listeners.
#[derive(Debug, Clone, Copy)]
pub struct Nginx {
    /// Plain listener.
    pub http: u16,
    /// TLS listener; `None` when nginx has no SSL module.
    pub https: Option<u16>,
    /// Master process id (workers are its children).
    pub pid: u32,
    /// Worker processes (`worker_processes`).
    pub workers: usize,
}

/// Everything running, and what the scenarios need to reach it.
#[derive(Debug)]
pub struct Lab {
    /// Every process started; dropping the lab stops them.
    pub guards: Vec<ProcGuard>,
    /// The plain mirror.
    pub mirror: Proc,
    /// Mirrors answering the V1 and V2 challenges; `None` when unsupported.
    pub challenge: Option<(Proc, Proc)>,
    /// The gateway.
    pub gateway: Gateway,
    /// Torii's worker threads, and nginx's worker processes.
    pub proxy_workers: usize,
    /// nginx, when installed.
    pub nginx: Option<Nginx>,
    /// `nginx -v`, when nginx runs.
    pub nginx_version: Option<String>,
    /// The CA the generator trusts for https scenarios.
    pub pki: Pki,
    /// The API key's client secret (both keys have it).
    pub apikey_secret: String,
    /// The Redis sharing the metered key's counts; `None` when redis-server is not installed.
    pub redis: Option<Proc>,
    /// The external issuer's RS256 token for the `jwt` route; `None` when `openssl` could not
    /// make its key.
    pub jwt_token: Option<String>,
    /// Scenarios that cannot run here, with the reason.
    pub skipped: Vec<Skipped>,
}

/// 127.0.0.1:`port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts `torii mirror` on a free port with `extra` flags.
fn start_mirror(
    torii: &Path,
    dir: &Path,
    name: &str,
    extra: &[&str],
) -> Result<(ProcGuard, Proc), String> {
    let port = free_port()?;
    let log = dir.join(format!("{name}.log"));
    let mut cmd = Command::new(torii);
    cmd.arg("mirror")
        .arg("--listen")
        .arg(loopback(port).to_string())
        .args(["--workers", &MIRROR_WORKERS.to_string()])
        .args(extra);
    let mut guard = ProcGuard::spawn(name, cmd, &log)?;
    guard.wait_ready(loopback(port), START_LIMIT, &log)?;
    let pid = guard.pid();
    Ok((guard, Proc { port, pid }))
}

impl Lab {
    /// Starts everything in `dir` (the suite's temp dir), Torii and nginx with `proxy_workers`
    /// workers each. On error the processes already started are stopped before this returns.
    pub fn start(torii: &Path, dir: &Path, proxy_workers: usize) -> Result<Lab, String> {
        let secret = new_secret()?;
        let apikey_secret = new_secret()?;
        let mut skipped = Vec::new();
        let mut guards: Vec<ProcGuard> = Vec::new();

        let help = Command::new(torii)
            .args(["mirror", "--help"])
            .output()
            .map_err(|e| format!("{} mirror --help: {e}", torii.display()))?;
        let challenge_ok = String::from_utf8_lossy(&help.stdout).contains("--challenge");

        let (g, mirror) = start_mirror(torii, dir, "mirror", &[])?;
        guards.push(g);
        let mut backends = Backends {
            plain: mirror.port,
            v1: None,
            v2: None,
        };
        let mut challenge = None;
        if challenge_ok {
            let (g1, m1) = start_mirror(torii, dir, "mirror-v1", &["--challenge", "v1"])?;
            guards.push(g1);
            let v2_args = ["--challenge", "v2", "--secret", &secret];
            let (g2, m2) = start_mirror(torii, dir, "mirror-v2", &v2_args)?;
            guards.push(g2);
            backends.v1 = Some(m1.port);
            backends.v2 = Some(m2.port);
            challenge = Some((m1, m2));
        } else {
            for name in ["torii-v1", "torii-v2", "torii-v2-info"] {
                skipped.push(Skipped {
                    name: name.into(),
                    reason: "`torii mirror --help` does not list --challenge yet".into(),
                });
            }
            println!("note: torii mirror has no --challenge yet; skipping the V1, V2 and info-token scenarios");
        }

        let pki = setup::make_pki(dir, &["plain.test", "nginx.test"])?;
        let redis = match find_on_path("redis-server") {
            None => {
                skipped.push(Skipped {
                    name: "torii-apikey-quota".into(),
                    reason: "redis-server is not on PATH (Debian package redis-server)".into(),
                });
                println!("note: redis-server not installed; skipping the quota scenario");
                None
            }
            Some(bin) => {
                let (g, port) = redis::start(&bin, dir)?;
                let pid = g.pid();
                guards.push(g);
                Some(Proc { port, pid })
            }
        };
        let (jwt_public_key, jwt_token) = match issuer::make_issuer(dir) {
            Ok(iss) => {
                let token = issuer::sign_token(&iss, unix_now())?;
                (Some(iss.public_key), Some(token))
            }
            Err(e) => {
                skipped.push(Skipped {
                    name: "torii-jwt".into(),
                    reason: format!("no RSA key for the external issuer: {e}"),
                });
                println!("note: {e}; skipping the jwt scenario");
                (None, None)
            }
        };
        let security = Security {
            https_port: free_port()?,
            cert: pki.cert.clone(),
            key: pki.key.clone(),
            signing_key: setup::keygen(torii, dir)?,
            redis_port: redis.map(|r| r.port),
            jwt_public_key,
        };
        let http = free_port()?;
        let cfg_path = dir.join("torii.toml");
        std::fs::write(
            &cfg_path,
            config::gateway_toml(http, proxy_workers, &backends, &security),
        )
        .map_err(|e| format!("{}: {e}", cfg_path.display()))?;
        let gw_log = dir.join("torii.log");
        let mut cmd = Command::new(torii);
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg_path)
            .env(SECRET_ENV, &secret)
            .env(APIKEY_SECRET_ENV, &apikey_secret);
        let mut g = ProcGuard::spawn("torii", cmd, &gw_log)?;
        g.wait_ready(loopback(http), START_LIMIT, &gw_log)?;
        g.wait_ready(loopback(security.https_port), START_LIMIT, &gw_log)?;
        let gateway = Gateway {
            http,
            https: security.https_port,
            pid: g.pid(),
        };
        guards.push(g);

        let mut nginx_version = None;
        let nginx = match find_on_path("nginx") {
            None => {
                for name in ["nginx", "nginx-tls", "nginx-ws"] {
                    skipped.push(Skipped {
                        name: name.into(),
                        reason: "nginx is not on PATH".into(),
                    });
                }
                println!("note: nginx not installed; skipping the nginx scenarios");
                None
            }
            Some(bin) => {
                let (g, n) =
                    start_nginx(&bin, dir, mirror.port, proxy_workers, &pki, &mut skipped)?;
                guards.push(g);
                nginx_version = Some(host::nginx_version(&bin));
                Some(n)
            }
        };
        Ok(Lab {
            guards,
            mirror,
            challenge,
            gateway,
            proxy_workers,
            nginx,
            nginx_version,
            pki,
            apikey_secret,
            redis,
            jwt_token,
            skipped,
        })
    }

    /// Proves the gateway enforces API keys and tokens before they are measured: requests
    /// without a credential, with a wrong secret or a forged token get 401, and the real
    /// credentials get 200. Then returns an access token from the token service.
    pub fn probe_and_fetch_token(&self) -> Result<String, String> {
        let gw = loopback(self.gateway.http);
        let get = |host: &str, headers: &[String]| setup::send(gw, "GET", "/", host, headers, b"");
        let id = format!("Otoroshi-Client-Id: {CLIENT_ID}");
        let secret = format!("Otoroshi-Client-Secret: {}", self.apikey_secret);
        expect_status(&get("apikey.test", &[])?, 401, "apikey route without a key")?;
        let wrong = ["Otoroshi-Client-Secret: wrong".to_string(), id.clone()];
        expect_status(
            &get("apikey.test", &wrong)?,
            401,
            "apikey route, wrong secret",
        )?;
        expect_status(&get("apikey.test", &[id, secret])?, 200, "apikey route")?;
        let token = setup::fetch_token(gw, OAUTH_HOST, CLIENT_ID, &self.apikey_secret)?;
        expect_status(
            &get("bearer.test", &[])?,
            401,
            "bearer route without a token",
        )?;
        let forged = format!("Authorization: Bearer {}x", token);
        expect_status(
            &get("bearer.test", &[forged])?,
            401,
            "bearer route, bad token",
        )?;
        let bearer = format!("Authorization: Bearer {token}");
        expect_status(&get("bearer.test", &[bearer])?, 200, "bearer route")?;
        if let Some(jwt) = &self.jwt_token {
            expect_status(&get("jwt.test", &[])?, 401, "jwt route without a token")?;
            let forged = format!("Authorization: Bearer {jwt}x");
            expect_status(&get("jwt.test", &[forged])?, 401, "jwt route, bad token")?;
            let good = format!("Authorization: Bearer {jwt}");
            expect_status(&get("jwt.test", &[good])?, 200, "jwt route")?;
        }
        if let Some(r) = self.redis {
            let metered = [
                format!("Otoroshi-Client-Id: {METERED_CLIENT_ID}"),
                format!("Otoroshi-Client-Secret: {}", self.apikey_secret),
            ];
            expect_status(
                &get("apikey-quota.test", &[])?,
                401,
                "quota route without a key",
            )?;
            expect_status(&get("apikey-quota.test", &metered)?, 200, "quota route")?;
            wait_for_redis_count(r.port)?;
        }
        Ok(token)
    }
}

/// The longest wait for the gateway's first push to Redis (its sync interval is 200 ms).
const REDIS_PUSH_LIMIT: Duration = Duration::from_secs(5);

/// Waits until the metered key's total in Redis counts the probe's call: proof that the quota
/// scenario really syncs with Redis.
fn wait_for_redis_count(port: u16) -> Result<(), String> {
    let key = format!("otoroshi:apikey:quotas:global:{METERED_CLIENT_ID}");
    let polls = REDIS_PUSH_LIMIT.as_millis() / 100;
    for _ in 0..polls {
        if redis::get_counter(port, &key)?.is_some_and(|n| n >= 1) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "the gateway did not push the metered key's count to Redis ({key}) within {REDIS_PUSH_LIMIT:?}"
    ))
}

/// Unix seconds now.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether `nginx -V` lists the SSL module.
fn nginx_has_ssl(bin: &Path) -> bool {
    Command::new(bin)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).contains("--with-http_ssl_module"))
        .unwrap_or(false)
}

/// Writes nginx.conf (plain, and TLS when the module is there; `workers` worker processes)
/// and starts nginx.
fn start_nginx(
    bin: &PathBuf,
    dir: &Path,
    backend: u16,
    workers: usize,
    pki: &Pki,
    skipped: &mut Vec<Skipped>,
) -> Result<(ProcGuard, Nginx), String> {
    let port = free_port()?;
    let tls = if nginx_has_ssl(bin) {
        Some(NginxTls {
            port: free_port()?,
            cert: pki.cert.clone(),
            key: pki.key.clone(),
        })
    } else {
        skipped.push(Skipped {
            name: "nginx-tls".into(),
            reason: "`nginx -V` does not list --with-http_ssl_module".into(),
        });
        println!("note: nginx has no SSL module; skipping the nginx-tls scenario");
        None
    };
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        config::nginx_conf(dir, port, workers, backend, tls.as_ref()),
    )
    .map_err(|e| format!("{}: {e}", conf.display()))?;
    let log = dir.join("nginx.log");
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .arg("-c")
        .arg(&conf);
    let mut g = ProcGuard::spawn("nginx", cmd, &log)?;
    g.wait_ready(loopback(port), START_LIMIT, &log)?;
    if let Some(t) = &tls {
        g.wait_ready(loopback(t.port), START_LIMIT, &log)?;
    }
    let pid = g.pid();
    Ok((
        g,
        Nginx {
            http: port,
            https: tls.map(|t| t.port),
            pid,
            workers,
        },
    ))
}
