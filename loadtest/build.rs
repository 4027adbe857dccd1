//! Build script of `torii-loadtest`: records the git commit of the checkout it is built from
//! as `TORII_LOADTEST_GIT_COMMIT`, for the suite report's commit line when the `torii` measured
//! sits beside this binary and the checkout cannot be asked at run time (moved or removed:
//! `suite::host`). Cargo runs it again when `HEAD` or the branch it names moves.
//!
//! Without git, or outside a work tree (a source tarball), it records nothing: the report then
//! says `unknown` rather than failing the build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `git <args>` in `dir`: its trimmed stdout when it succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
fn is_commit_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
        return;
    };
    // The files whose change moves HEAD: HEAD itself (a checkout), the branch it names (a
    // commit) and packed-refs (where that branch may live). `--git-path` finds them in a linked
    // work tree too (its HEAD is its own, its branches are the main repository's). A path that
    // does not exist is not named: Cargo would then run this script on every build. A branch
    // that lives only in packed-refs is watched through its directory, where the next commit
    // writes it.
    let git_path = |name: &str| git(&dir, &["rev-parse", "--git-path", name]).map(|p| dir.join(p));
    let watch = |path: &Path| println!("cargo:rerun-if-changed={}", path.display());
    for name in ["HEAD", "packed-refs"] {
        if let Some(path) = git_path(name).filter(|p| p.exists()) {
            watch(&path);
        }
    }
    if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"]).and_then(|b| git_path(&b)) {
        match (branch.exists(), branch.parent()) {
            (true, _) => watch(&branch),
            (false, Some(parent)) if parent.exists() => watch(parent),
            _ => {}
        }
    }
    if let Some(commit) = git(&dir, &["rev-parse", "HEAD"]).filter(|c| is_commit_id(c)) {
        println!("cargo:rustc-env=TORII_LOADTEST_GIT_COMMIT={commit}");
    }
}
