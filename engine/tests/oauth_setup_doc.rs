//! docs/oauth2.md "Set it up for real", run as a reader follows it, so that the page cannot
//! drift from what the gateway does. The fenced blocks of that section (from its `##` heading to
//! the next `##` heading) are taken from the page as they are written and played in page order
//! in an empty directory, with the real `torii` binary first on `PATH`:
//!
//! * `sh` blocks run with bash (`set -euo pipefail`): the key, the certificate, the secret file,
//!   `torii check`;
//! * the `toml` block is written, where it stands, as the file that `torii run --config FILE`
//!   names;
//! * the `torii run` line is started through the harness ([`Torii::run`]), which waits for its
//!   `listening` line instead of blocking as the reader's shell does;
//! * the commands after it (the curl of the token request) must print the token answer the
//!   page's `json` block shows: the same fields with the same values (`expires_in`, `scope`,
//!   `token_type`), and an access token that starts with the header shown (the configured key
//!   pair's `kid` and algorithm, not an ephemeral key's).
//!
//! The one change made to the page's text: the listener's address (the first `https = [...]` or
//! `http = [...]` line) becomes `127.0.0.1:0` (a free port chosen by the kernel), and that port
//! replaces the listener's port (`:8443`) in the commands after `torii run` (`--resolve` and the
//! URL), so the test needs no fixed port.
//!
//! Needs `openssl` and `curl`, like the reader; a missing one fails the test naming it
//! (docs/testing.md, "No silent skip").

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::process::{torii_bin, TempDir, Torii};

/// The heading that opens the section under test.
const HEADING: &str = "## Set it up for real";

/// A fenced block: its info string (`sh`, `toml`, `json`) and its text, with the indentation of
/// its opening fence (a block inside a list item) removed from every line.
#[derive(Debug, PartialEq)]
struct Block {
    lang: String,
    text: String,
}

/// The fenced blocks of the section of `page` opened by `heading`.
fn section_blocks(page: &str, heading: &str) -> Vec<Block> {
    let mut lines = page.lines().skip_while(|l| l.trim_end() != heading);
    assert!(
        lines.next().is_some(),
        "docs/oauth2.md has no line {heading:?}"
    );
    let mut blocks = Vec::new();
    let mut open: Option<(usize, Block)> = None;
    for line in lines.take_while(|l| !l.starts_with("## ")) {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match open.take() {
            None => {
                if let Some(lang) = trimmed.strip_prefix("```") {
                    let block = Block {
                        lang: lang.trim().to_owned(),
                        text: String::new(),
                    };
                    open = Some((indent, block));
                }
            }
            Some((fence, block)) if trimmed.trim_end() == "```" && indent == fence => {
                blocks.push(block);
            }
            Some((fence, mut block)) => {
                block.text.push_str(line.get(fence..).unwrap_or(trimmed));
                block.text.push('\n');
                open = Some((fence, block));
            }
        }
    }
    assert!(open.is_none(), "an unclosed fence in {heading:?}");
    blocks
}

/// What the section does, in page order.
#[derive(Debug)]
enum Step {
    /// `sh` lines, run with bash.
    Shell(String),
    /// The `toml` block, written as the file `torii run --config` names.
    Config,
    /// The `torii run` line.
    Run(String),
}

impl Step {
    /// `config`, `run`, or the shell text (to say what the page does in what order).
    fn name(&self) -> String {
        match self {
            Step::Shell(text) => text.clone(),
            Step::Config => "config".into(),
            Step::Run(_) => "run".into(),
        }
    }
}

/// Runs `script` with bash in `dir`, the test's `torii` first on `PATH`; returns stdout, and
/// fails the test with both outputs when the script fails.
fn bash(dir: &Path, script: &str) -> String {
    let bin_dir = Path::new(torii_bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-c", &format!("set -euo pipefail\n{script}")])
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the page's commands failed ({:?}):\n{script}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_for_real_setup_issues_a_token_as_the_page_shows() {
    for tool in ["openssl", "curl"] {
        if !common::prereq::have(tool) {
            common::prereq::missing(tool, &format!("{tool} is not installed (the page runs it)"));
            return;
        }
    }
    let page_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/oauth2.md");
    let page = std::fs::read_to_string(&page_path).unwrap();
    let blocks = section_blocks(&page, HEADING);
    let of = |lang: &str| -> Vec<&Block> { blocks.iter().filter(|b| b.lang == lang).collect() };
    let (tomls, answers) = (of("toml"), of("json"));
    assert_eq!(tomls.len(), 1, "one toml block expected: {blocks:#?}");
    assert_eq!(answers.len(), 1, "one json block expected: {blocks:#?}");
    let langs: Vec<&str> = blocks.iter().map(|b| b.lang.as_str()).collect();
    assert!(
        langs.iter().all(|l| ["sh", "toml", "json"].contains(l)),
        "a block this test does not know how to run: {langs:?}"
    );

    // The section as steps in page order; an sh block is split at its `torii run` line.
    let mut steps = Vec::new();
    for block in &blocks {
        match block.lang.as_str() {
            "toml" => steps.push(Step::Config),
            "sh" => {
                let mut shell = String::new();
                for line in block.text.lines() {
                    if line.trim_start().starts_with("torii run ") {
                        steps.push(Step::Shell(std::mem::take(&mut shell)));
                        steps.push(Step::Run(line.trim().to_owned()));
                    } else {
                        shell.push_str(line);
                        shell.push('\n');
                    }
                }
                steps.push(Step::Shell(shell));
            }
            _ => {}
        }
    }
    steps.retain(|s| !matches!(s, Step::Shell(text) if text.trim().is_empty()));
    let runs: Vec<&String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Run(line) => Some(line),
            _ => None,
        })
        .collect();
    let [run_line] = runs[..] else {
        panic!("one `torii run` line expected: {steps:#?}");
    };
    let words: Vec<&str> = run_line.split_whitespace().collect();
    let ["torii", "run", "--config", config_name] = words[..] else {
        panic!("`torii run --config FILE` expected, the page says {run_line:?}");
    };
    let order: Vec<String> = steps.iter().map(Step::name).collect();
    let check = format!("torii check --config {config_name}");
    assert!(
        matches!(&order[..], [.., c, s, r, _] if c == "config" && s.contains(&check) && r == "run"),
        "the page writes the file, checks it, runs the gateway, then requests a token: {steps:#?}"
    );

    // The one edit: the listener on a free loopback port.
    let toml = &tomls[0].text;
    let listener_line = toml
        .lines()
        .find(|l| {
            ["https = [\"", "http = [\""]
                .iter()
                .any(|p| l.trim_start().starts_with(p))
        })
        .expect("the configuration has a listener");
    let listener = listener_line.split('"').nth(1).unwrap();
    let doc_port = format!(":{}", listener.rsplit(':').next().unwrap());
    let toml = toml.replace(&format!("\"{listener}\""), "\"127.0.0.1:0\"");

    let dir = TempDir::new("oauth-doc");
    let mut torii: Option<Torii> = None;
    let mut answer = String::new();
    for step in &steps {
        match (step, &torii) {
            (Step::Config, _) => {
                dir.write(config_name, &toml);
            }
            (Step::Run(_), _) => torii = Some(Torii::run(&dir.0.join(config_name))),
            (Step::Shell(text), None) => {
                bash(&dir.0, text);
            }
            (Step::Shell(text), Some(t)) => {
                assert!(
                    text.contains(&doc_port),
                    "a command after `torii run` does not use the listener's port {doc_port}:\n{text}"
                );
                let port = format!(":{}", t.addr.port());
                answer.push_str(&bash(&dir.0, &text.replace(&doc_port, &port)));
            }
        }
    }
    let torii = torii.unwrap();

    let got: serde_json::Value = serde_json::from_str(answer.trim()).unwrap_or_else(|e| {
        panic!(
            "the token request did not answer JSON ({e}): {answer}\ngateway log: {:?}",
            torii.log.lock().unwrap()
        )
    });
    // The page elides the token with '…': without it, the text is JSON and the token there is
    // the prefix every real one must have.
    let shown: serde_json::Value = serde_json::from_str(&answers[0].text.replace('…', ""))
        .unwrap_or_else(|e| panic!("the page's answer is not JSON without '…' ({e})"));
    let token = got["access_token"].as_str().unwrap_or_default();
    let prefix = shown["access_token"].as_str().unwrap();
    assert!(
        prefix.ends_with('.') && token.starts_with(prefix),
        "the token's header differs from the page's: {token} vs {prefix}"
    );
    assert_eq!(token.split('.').count(), 3, "{token}");
    // Every other field, and the set of fields, as the page shows them.
    let rest = |v: &serde_json::Value| {
        let mut v = v.clone();
        v.as_object_mut().map(|o| o.remove("access_token"));
        v
    };
    assert_eq!(
        rest(&got),
        rest(&shown),
        "the answer differs from the page's"
    );
}

#[test]
fn the_reader_of_the_page_takes_the_section_blocks_unindented() {
    let page = "# t\n```sh\noutside\n```\n## Set it up for real\n1. a\n   ```sh\n   one \\\n     two\n   ```\n\
                text\n```toml\nk = 1\n```\n## Answers\n```sh\nafter\n```\n";
    assert_eq!(
        section_blocks(page, HEADING),
        [
            Block {
                lang: "sh".into(),
                text: "one \\\n  two\n".into()
            },
            Block {
                lang: "toml".into(),
                text: "k = 1\n".into()
            },
        ]
    );
}
