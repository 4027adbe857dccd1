//! Whether this process can open a log file for appending, checked when the configuration is
//! loaded (`[access_log] path`), so that `torii check` and a start or reload refuse a path the
//! access-log writer could not open instead of the writer discarding every line.
//!
//! Owns the probe [`SystemEnv`](super::SystemEnv) answers with: it looks at the file or, when
//! the file does not exist yet, at its directory, and asks the kernel (`faccessat` with
//! `AT_EACCESS`: the effective user and groups, as `open` will use them) whether a write would
//! be allowed. It creates, opens and changes nothing: `torii check` run as root must not leave
//! a root-owned log file that the service user then cannot write. The answer holds for the user
//! running the check (the unit's `ExecStartPre` runs it as the service user) and at that moment.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `Ok` when a process with this one's user and groups could open `path` to append, creating
/// it when missing; otherwise what stands in the way, in words (the paths included).
pub(crate) fn appendable(path: &Path) -> Result<(), String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(format!("{shown} is a directory")),
        Ok(_) => access(path, libc::W_OK)
            .map_err(|e| format!("{shown} is not writable by uid {} ({e})", euid())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => directory_takes_a_new_file(path),
        Err(e) => Err(format!("cannot reach {shown}: {e}")),
    }
}

/// `path` does not exist: its directory must exist and let this user create a file in it.
fn directory_takes_a_new_file(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => access(dir, libc::W_OK | libc::X_OK).map_err(|e| {
            format!(
                "the directory {shown} is not writable by uid {} ({e}): the file cannot be created",
                euid()
            )
        }),
        Ok(_) => Err(format!("{shown} is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
            "the directory {shown} does not exist (create it, writable by the user torii runs as)"
        )),
        Err(e) => Err(format!("cannot reach the directory {shown}: {e}")),
    }
}

/// `faccessat(AT_FDCWD, path, mode, AT_EACCESS)`.
fn access(path: &Path, mode: libc::c_int) -> io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path holds a NUL byte"))?;
    // SAFETY: `c_path` is a NUL-terminated string that outlives the call, which only reads it.
    let rc = unsafe { libc::faccessat(libc::AT_FDCWD, c_path.as_ptr(), mode, libc::AT_EACCESS) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The effective user id, named in the refusals (the user `torii check` ran as matters).
fn euid() -> u32 {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{ok, MINIMAL};
    use crate::config::{load_str_with_env, AccessLogTarget, MapEnv};

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("torii-log-file-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let made = std::fs::create_dir_all(&dir);
        assert!(made.is_ok(), "{made:?}");
        dir
    }

    #[test]
    fn a_new_file_in_a_writable_directory_or_an_existing_file_is_appendable() {
        let dir = scratch("ok");
        let log = dir.join("access.log");
        assert_eq!(appendable(&log), Ok(()));
        // Nothing was created by the probe.
        assert!(!log.exists());
        assert!(std::fs::write(&log, "").is_ok());
        assert_eq!(appendable(&log), Ok(()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_directory_a_file_in_its_place_and_a_directory_as_the_file_are_refused() {
        let dir = scratch("refused");
        let missing = dir.join("logs/access.log");
        assert_eq!(
            appendable(&missing),
            Err(format!(
                "the directory {} does not exist (create it, writable by the user torii runs as)",
                dir.join("logs").display()
            ))
        );
        assert!(std::fs::write(dir.join("file"), "").is_ok());
        let below_a_file = dir.join("file/access.log");
        let err = appendable(&below_a_file).err().unwrap_or_default();
        assert!(
            err.starts_with(&format!("cannot reach {}: ", below_a_file.display())),
            "{err}"
        );
        assert_eq!(
            appendable(&dir),
            Err(format!("{} is a directory", dir.display()))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// What `[access_log]` validation does with the environment's answer: an error on
    /// `access_log.path` at the key's line and column, and no target.
    #[test]
    fn validation_refuses_a_path_the_environment_cannot_append_to() {
        let text = format!("{MINIMAL}\n[access_log]\npath = \"/var/log/torii/access.log\"\n");
        let refused = MapEnv::default()
            .refuse_append(
                "/var/log/torii/access.log",
                "the directory /var/log/torii does not exist",
            )
            .refuse_append("/etc/torii/stdout", "never asked");
        let errs = match load_str_with_env(&text, Path::new("/etc/torii"), &refused) {
            Ok(_) => panic!("accepted a path the environment refused"),
            Err(e) => e.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        let line = text
            .lines()
            .position(|l| l.starts_with("path = "))
            .unwrap_or(0)
            + 1;
        assert_eq!(
            errs,
            [format!(
                "access_log.path: cannot append to /var/log/torii/access.log: the directory \
                 /var/log/torii does not exist (line {line}, column 1)"
            )]
        );
        // The same file where every path is appendable; `stdout` is not a file to probe.
        assert_eq!(
            ok(&text).access_log,
            Some(AccessLogTarget::File("/var/log/torii/access.log".into()))
        );
        let stdout = format!("{MINIMAL}\n[access_log]\npath = \"stdout\"\n");
        let loaded = load_str_with_env(&stdout, Path::new("/etc/torii"), &refused);
        assert_eq!(
            loaded.map(|c| c.access_log).ok(),
            Some(Some(AccessLogTarget::Stdout))
        );
    }
}
