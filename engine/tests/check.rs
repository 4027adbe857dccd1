//! `torii check` as an operator runs it: every problem of a file at once (of the file itself
//! and of the key and certificate files it names, an access log the user cannot create
//! included), each with its key path and line:column, a missing file in one line, and warnings
//! (exit 0) for setups that load but cannot work.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::process::{torii_bin, TempDir, Torii};

fn check(dir: &TempDir, name: &str, text: &str) -> Output {
    let file = dir.write(name, text);
    Command::new(torii_bin())
        .args(["check", "--config", file.to_str().unwrap()])
        .env_remove("TORII_LOG")
        .output()
        .unwrap()
}

#[test]
fn every_error_of_a_file_is_reported_with_its_line() {
    let dir = TempDir::new("check-errors");
    let text = r#"[gateway]
http = ["127.0.0.1:0"]
workerz = 2
drain_timeout = "1h30m"

[limits]
keepalive_timeout = 60
upstream_timeout = "1.5s"

[[routes]]
id = "api"
domains = ["api.test"]
targets = ["http://127.0.0.1:9"]
[routes.challenge]
tll = "5s"
secret = "${CHALLENGE_SECRET}"
"#;
    let out = check(&dir, "bad.toml", text);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].ends_with("bad.toml: invalid configuration"),
        "{err}"
    );
    // Unknown keys and wrong types first (the file as read), then what validation finds.
    assert_eq!(
        &lines[1..],
        [
            "gateway.workerz: unknown key (did you mean `workers`?) (line 3, column 1)",
            "routes[0].challenge.tll: unknown key (did you mean `ttl`?) (line 15, column 1)",
            "limits.keepalive_timeout: a duration must be a string: a number and a unit (ms, s, m, h, d), or several from the largest unit to the smallest, such as \"30s\", \"1h30m\" or \"1.5s\" (line 7, column 1)",
            "routes[0].challenge.secret: invalid secret reference: Torii does not expand shell variables; write \"${env.CHALLENGE_SECRET}\" for an environment variable or \"${file:/path}\" for a file (line 16, column 1)",
        ],
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// The real `torii check` on files a first-hour user writes: a file that is not there is one
/// line; a file with an unresolvable target, a missing certificate and key file, a missing key
/// of a table and a misspelt route id gets every one of them, each where the file must change;
/// an array left open is reported on its own line.
#[test]
fn every_stage_is_reported_where_the_file_must_change() {
    let dir = TempDir::new("check-stages");
    let missing = dir.0.join("torii.toml");
    let out = Command::new(torii_bin())
        .args(["check", "--config", missing.to_str().unwrap()])
        .env_remove("TORII_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "cannot read {}: No such file or directory\n",
            missing.display()
        )
    );
    assert!(out.stdout.is_empty());

    let text = r#"[gateway]
http = ["127.0.0.1:0"]
https = ["127.0.0.1:0"]
[[certificates]]
cert = "gw.pem"
key = "gw.key"

[[routes]]
id = "orders"
domains = ["api.test"]
targets = ["http://nope.invalid:9"]
[routes.info_token]
algorithm = "RS256"

[[apikeys]]
client_id = "app"
client_secret = "a-secret"
routes = ["order"]
"#;
    let out = check(&dir, "stages.toml", text);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].ends_with("stages.toml: invalid configuration"),
        "{err}"
    );
    assert_eq!(lines.len(), 6, "{err}");
    // The resolver's words vary with the machine; the key and the position do not.
    assert!(
        lines[1].starts_with("routes[0].targets[0]: cannot resolve \"nope.invalid\": ")
            && lines[1].ends_with(" (line 11, column 12)"),
        "{err}"
    );
    let d = dir.0.display();
    assert_eq!(
        &lines[2..],
        [
            "routes[0].info_token.private_key: required for RS256 (missing from the table at line 12, column 1)".to_owned(),
            "apikeys[0].routes[0]: no route has the id \"order\" (did you mean `orders`?) (line 18, column 11)".to_owned(),
            format!("certificates[0].cert: cannot read {d}/gw.pem: No such file or directory (line 5, column 1)"),
            format!("certificates[0].key: cannot read {d}/gw.key: No such file or directory (line 6, column 1)"),
        ],
        "{err}"
    );

    let open = text.replace("\"http://nope.invalid:9\"]", "\"http://127.0.0.1:9\"");
    let out = check(&dir, "open.toml", &open);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().nth(1),
        Some("invalid TOML at line 11, column 32: invalid array; expected `]`"),
        "{err}"
    );
}

#[test]
fn warnings_are_printed_and_the_exit_code_is_zero() {
    let dir = TempDir::new("check-warnings");
    let text = r#"[gateway]
http = ["127.0.0.1:0"]

[client_credentials]
secure = true

[[apikeys]]
client_id = "app"
client_secret = "$APP_SECRET"
routes = ["api"]

[[routes]]
id = "api"
domains = ["api.test"]
targets = ["http://127.0.0.1:9"]

[[routes]]
id = "admin"
domains = ["admin.test"]
targets = ["http://127.0.0.1:9"]
[routes.apikeys]
[routes.info_token]
algorithm = "RS256"
private_key = "claim.pem"
"#;
    // The info token's key is read when the snapshot is built: the protocol's RSA test key.
    let key =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/keys/rsa2048.pem");
    let text = text.replace("claim.pem", key.to_str().unwrap());
    let out = check(&dir, "warn.toml", &text);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("ok: 2 routes"), "{stdout}");
    let warned: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("warning: "))
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        warned,
        [
            "apikeys[0].client_secret",
            "client_credentials.secure",
            "client_credentials",
            "apikeys[0].routes[0]",
            "routes[1].apikeys",
            "routes[1].info_token.algorithm",
        ],
        "{err}"
    );
    assert!(err.contains("(line 9, column 1)"), "{err}");
    assert!(err.contains("0.6-0.8 ms"), "{err}");
}

/// Route rules (issue 30): a rule that would change a header Torii owns and one that can
/// never match are refused, each at its key; a file whose rules are valid loads without a
/// warning (they are applied).
#[test]
fn route_rules_are_refused_or_loaded_without_warning() {
    let dir = TempDir::new("check-rules");
    let route = "[gateway]\nhttp = [\"127.0.0.1:0\"]\n\n[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n";
    let bad = format!(
        "{route}request_headers = {{ set = {{ \"X-Forwarded-For\" = \"1.2.3.4\" }} }}\nmethods = [\"POST\"]\nread_only = true\n"
    );
    let out = check(&dir, "bad.toml", &bad);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "routes[0].read_only: with these methods no request can be served: read_only = true allows only GET, HEAD and OPTIONS, and methods lists none of them (line 10, column 1)",
            "routes[0].request_headers.set.X-Forwarded-For: \"X-Forwarded-For\" cannot be changed by a request rule: Torii writes the X-Forwarded-For, -Proto and -Host headers itself (line 8, column 29)",
        ],
        "{err}"
    );
    let good =
        format!("{route}cors = {{ allow_origins = [\"https://a.test\"] }}\nmethods = [\"GET\"]\n");
    let out = check(&dir, "good.toml", &good);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert!(warnings.is_empty(), "{err}");
}

#[test]
fn run_logs_the_warnings_at_start_and_after_a_reload() {
    let dir = TempDir::new("run-warnings");
    let base = "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\n\n[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n";
    let path = dir.write("torii.toml", &format!("{base}[routes.apikeys]\n"));
    let torii = Torii::run(&path);
    let start = torii.log.lock().unwrap().join("\n");
    let line = start
        .lines()
        .find(|l| l.contains("no enabled [[apikeys]] entry lists route \"api\""))
        .unwrap_or_else(|| panic!("no warning at start:\n{start}"));
    assert!(
        line.contains(" WARN ") && line.contains("key=routes[0].apikeys"),
        "{line}"
    );
    assert!(line.contains("(line 9, column 9)"), "{line}");
    // A reload logs the new file's warnings.
    std::fs::write(
        &path,
        format!(
            "{base}[routes.info_token]\nsecret = \"$CLAIM_SECRET_WRITTEN_AS_IN_A_SHELL_SCRIPT\"\n"
        ),
    )
    .unwrap();
    torii.signal(libc::SIGHUP);
    let line = torii.wait_log("shell syntax", Duration::from_secs(10));
    assert!(line.contains("key=routes[0].info_token.secret"), "{line}");
    torii.wait_log("configuration reloaded", Duration::from_secs(10));
}

#[test]
fn secrets_are_never_printed_and_a_short_shell_variable_gets_the_hint() {
    let dir = TempDir::new("check-secrets");
    // Short: 17 bytes as written, refused, with the shell hint first, at the `secret` line.
    let short = r#"[gateway]
http = ["127.0.0.1:0"]

[[routes]]
id = "challenge"
domains = ["api.test"]
targets = ["http://127.0.0.1:9"]
[routes.challenge]
secret = "$CHALLENGE_SECRET"
"#;
    let out = check(&dir, "short.toml", short);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with("short.toml: invalid configuration"),
        "{text}"
    );
    assert_eq!(
        &lines[1..],
        ["routes[0].challenge.secret: looks like a shell variable: write \"${env.CHALLENGE_SECRET}\" to read it from the environment (Torii does not expand shell syntax, so as written the secret is the text itself); that text is 17 bytes long, and HMAC keys need at least 32 (line 9, column 1)"],
        "{text}"
    );
    assert!(
        !text.contains("$CHALLENGE_SECRET") && !text.contains("to_backend"),
        "{text}"
    );

    // Long enough to load: every secret-bearing key warned about by name, none printed.
    let values = [
        "$MY_VERY_LONG_SECRET_VALUE_FOR_THE_CHALLENGE",
        "$ANOTHER_VERY_LONG_SECRET_FOR_THE_INFO_TOKEN",
        "$A_VERY_LONG_SECRET_FOR_THE_EXTERNAL_JWTS",
        "$API_SECRET",
        "literal-api-secret-never-printed",
    ];
    let loads = format!(
        r#"[gateway]
http = ["127.0.0.1:0"]

[[apikeys]]
client_id = "app"
client_secret = "{3}"
routes = ["api"]

[[apikeys]]
client_id = "other"
client_secret = "{4}"
routes = ["api"]

[[routes]]
id = "api"
domains = ["api.test"]
targets = ["http://127.0.0.1:9"]
[routes.apikeys]
[routes.challenge]
secret = "{0}"
[routes.info_token]
  secret = "{1}"

[[routes]]
id = "jwt"
domains = ["jwt.test"]
targets = ["http://127.0.0.1:9"]
[routes.jwt]
algorithms = ["HS256"]
secret = "{2}"
"#,
        values[0], values[1], values[2], values[3], values[4]
    );
    let out = check(&dir, "loads.toml", &loads);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    for v in values {
        assert!(!text.contains(v), "{v} printed:\n{text}");
    }
    for (path, name, at) in [
        ("apikeys[0].client_secret", "API_SECRET", "line 6, column 1"),
        (
            "routes[0].challenge.secret",
            "MY_VERY_LONG_SECRET_VALUE_FOR_THE_CHALLENGE",
            "line 20, column 1",
        ),
        (
            "routes[0].info_token.secret",
            "ANOTHER_VERY_LONG_SECRET_FOR_THE_INFO_TOKEN",
            "line 22, column 3",
        ),
        (
            "routes[1].jwt.secret",
            "A_VERY_LONG_SECRET_FOR_THE_EXTERNAL_JWTS",
            "line 30, column 1",
        ),
    ] {
        let line = format!(
            "warning: {path}: looks like a shell variable: write \"${{env.{name}}}\" to read it from the environment (Torii does not expand shell syntax, so as written the secret is the text itself) ({at})"
        );
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
}

/// A file with the access log under `dir/logs`, the `path` key on line 4.
fn with_access_log(dir: &TempDir) -> (String, std::path::PathBuf) {
    let logs = dir.0.join("logs");
    let text = format!(
        "[gateway]\nhttp = [\"127.0.0.1:0\"]\n[access_log]\npath = \"{}/access.log\"\n\n\
         [[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n",
        logs.display()
    );
    (text, logs)
}

/// Without systemd's `LogsDirectory=` nothing creates the access log's directory: `torii check`
/// says so at the key's position, and `torii run` refuses to start instead of discarding lines.
#[test]
fn an_access_log_in_a_missing_directory_is_an_error() {
    let dir = TempDir::new("check-log-missing");
    let (text, logs) = with_access_log(&dir);
    let out = check(&dir, "torii.toml", &text);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let log = logs.join("access.log");
    assert_eq!(
        err.lines().nth(1),
        Some(
            format!(
                "access_log.path: cannot append to {}: the directory {} does not exist (create \
                 it, writable by the user torii runs as) (line 4, column 1)",
                log.display(),
                logs.display()
            )
            .as_str()
        ),
        "{err}"
    );
    let run = Command::new(torii_bin())
        .args([
            "run",
            "--config",
            dir.0.join("torii.toml").to_str().unwrap(),
        ])
        .env_remove("TORII_LOG")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("access_log.path: cannot append to"),
        "{run:?}"
    );
    // Once the directory exists the same file passes.
    std::fs::create_dir(&logs).unwrap();
    let out = check(&dir, "torii.toml", &text);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!log.exists(), "torii check created the log file");
}

/// A directory the user running `torii check` cannot write to: as root, the check runs as
/// `nobody` (uid 65534) on a root-owned 0755 directory; otherwise on a 0555 directory of ours.
#[test]
fn an_access_log_in_a_directory_the_user_cannot_write_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new("check-log-unwritable");
    let (text, logs) = with_access_log(&dir);
    let file = dir.write("torii.toml", &text);
    std::fs::create_dir(&logs).unwrap();
    // SAFETY: geteuid takes nothing and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mode = if root { 0o755 } else { 0o555 };
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(torii_bin());
    cmd.args(["check", "--config", file.to_str().unwrap()])
        .env_remove("TORII_LOG");
    if root {
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o755));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let line = err.lines().nth(1).unwrap_or_default();
    assert!(
        line.starts_with(&format!(
            "access_log.path: cannot append to {}/access.log: the directory {} is not writable \
             by uid ",
            logs.display(),
            logs.display()
        )) && line.ends_with("the file cannot be created (line 4, column 1)"),
        "{err}"
    );
}
