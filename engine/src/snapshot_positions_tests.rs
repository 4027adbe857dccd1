//! Where `torii check` points, over broken files: each case is a whole file and the exact lines
//! printed for it, as `torii check` gets them (`load_str_checked`, then the snapshot's key and
//! certificate files, or `snapshot::every_error` for a file that did not validate).
//!
//! The rules under test: a key that is written and wrong is reported at the key's line and
//! column; a key that is missing is said to be missing from its table, at the table's header;
//! a TOML syntax error is reported at the line to edit; every error of every stage is reported
//! (a missing certificate *and* key file, a missing key file beside an unresolvable target);
//! an id that names nothing gets the nearest id, as a misspelt key gets the nearest key.
//! (A test of the snapshot's module, below which `config` sits: the cases need both.)

use std::path::Path;

use super::{every_error, Snapshot};
use crate::config::tests::env;
use crate::config::{load_file_checked, load_str_checked, Rejected};

/// Relative files resolve here, where nothing exists.
const BASE: &str = "/nonexistent-torii";

/// The lines `torii check` prints for `text` after its `invalid configuration` line.
fn check(text: &str) -> Vec<String> {
    let errors = match load_str_checked(text, Path::new(BASE), &env()) {
        Ok(config) => {
            let locations = config.locations.clone();
            match Snapshot::build(config, 1) {
                Ok(_) => panic!("no error for:\n{text}"),
                Err(e) => e.located(&locations),
            }
        }
        Err(rejected) => every_error(rejected),
    };
    errors.0.iter().map(ToString::to_string).collect()
}

const HEAD: &str = "[gateway]\nhttp = [\"127.0.0.1:8080\"]\n";

/// The protocol's RSA test key, as a file that exists and holds a usable key.
fn rsa_key() -> String {
    format!(
        "{}/../protocol/tests/keys/rsa2048.pem",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn each_error_points_where_the_file_must_change() {
    let rsa = rsa_key();
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "a key missing from its table: said so, at the table's header",
            format!("{HEAD}\n[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n[routes.info_token]\nalgorithm = \"RS256\"\n"),
            vec!["routes[0].info_token.private_key: required for RS256 (missing from the table at line 8, column 1)".into()],
        ),
        (
            "a key file that is written and missing: at the key",
            format!("{HEAD}\n[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n[routes.info_token]\nalgorithm = \"RS256\"\n  private_key = \"claim.pem\"\n"),
            vec![format!("routes[0].info_token.private_key: cannot read {BASE}/claim.pem: No such file or directory (line 10, column 3)")],
        ),
        (
            "https without certificates: at the https key",
            "[gateway]\nhttp = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n".into(),
            vec!["gateway.https: https listeners need at least one [[certificates]] entry (a cert and key file pair) (line 3, column 1)".into()],
        ),
        (
            "a missing certificate file and a missing key file: both, each at its key",
            "[gateway]\nhttps = [\"127.0.0.1:8443\"]\n\n[[certificates]]\nid = \"gw\"\ncert = \"gw.pem\"\nkey = \"gw.key\"\n[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n".into(),
            vec![
                format!("certificates[0].cert: cannot read {BASE}/gw.pem: No such file or directory (line 6, column 1)"),
                format!("certificates[0].key: cannot read {BASE}/gw.key: No such file or directory (line 7, column 1)"),
            ],
        ),
        (
            "a chain file without a certificate and a missing key file: both, each at its key",
            format!("[gateway]\nhttps = [\"127.0.0.1:8443\"]\n[[certificates]]\ncert = \"{rsa}\"\nkey = \"gw.key\"\n[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n"),
            vec![
                format!("certificates[0].cert: {rsa}: no CERTIFICATE block found (line 4, column 1)"),
                format!("certificates[0].key: cannot read {BASE}/gw.key: No such file or directory (line 5, column 1)"),
            ],
        ),
        (
            "an unresolvable target hides no missing file",
            "[gateway]\nhttp = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n[[certificates]]\ncert = \"gw.pem\"\nkey = \"gw.key\"\n\n[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\", \"http://nope.test:9\"]\n[routes.info_token]\nalgorithm = \"RS256\"\nprivate_key = \"claim.pem\"\n".into(),
            vec![
                "routes[0].targets[1]: cannot resolve \"nope.test\": name not known (line 11, column 34)".into(),
                format!("routes[0].info_token.private_key: cannot read {BASE}/claim.pem: No such file or directory (line 14, column 1)"),
                format!("certificates[0].cert: cannot read {BASE}/gw.pem: No such file or directory (line 5, column 1)"),
                format!("certificates[0].key: cannot read {BASE}/gw.key: No such file or directory (line 6, column 1)"),
            ],
        ),
        (
            "the files of upstream_tls and of client_auth: each at its key, all of them",
            "[gateway]\nhttps = [\"127.0.0.1:8443\"]\n[gateway.client_auth]\nca = \"clients.pem\"\n[[certificates]]\ncert = \"gw.pem\"\nkey = \"gw.key\"\n[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"https://127.0.0.1:9\"]\nupstream_tls = { ca = \"ca.pem\", client_cert = \"c.pem\", client_key = \"c.key\" }\n".into(),
            vec![
                format!("routes[0].upstream_tls.ca: cannot read {BASE}/ca.pem: No such file or directory (line 12, column 18)"),
                format!("routes[0].upstream_tls.client_cert: cannot read {BASE}/c.pem: No such file or directory (line 12, column 33)"),
                format!("routes[0].upstream_tls.client_key: cannot read {BASE}/c.key: No such file or directory (line 12, column 56)"),
                format!("certificates[0].cert: cannot read {BASE}/gw.pem: No such file or directory (line 6, column 1)"),
                format!("certificates[0].key: cannot read {BASE}/gw.key: No such file or directory (line 7, column 1)"),
                format!("gateway.client_auth.ca: cannot read {BASE}/clients.pem: No such file or directory (line 4, column 1)"),
            ],
        ),
        (
            "an entry left out by validation: the files of the next one are not reported under its index",
            "[gateway]\nhttps = [\"127.0.0.1:8443\"]\n[[certificates]]\ncert = \"a.pem\"\n[[certificates]]\ncert = \"b.pem\"\nkey = \"b.key\"\n[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n".into(),
            vec!["certificates[0].key: required (missing from the table at line 3, column 1)".into()],
        ),
        (
            "a route id close to one that exists: the suggestion",
            format!("{HEAD}\n[[routes]]\nid = \"orders\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n\n[[apikeys]]\nclient_id = \"a\"\nclient_secret = \"s\"\nroutes = [\"orders\", \"order\", \"inventory\"]\n"),
            vec![
                "apikeys[0].routes[1]: no route has the id \"order\" (did you mean `orders`?) (line 12, column 21)".into(),
                "apikeys[0].routes[2]: no route has the id \"inventory\" (line 12, column 30)".into(),
            ],
        ),
        (
            "a key pair id close to one that exists: the suggestion",
            format!("{HEAD}\n[client_credentials]\nsecure = false\ndefault_key_pair = \"signing-kee\"\n[[key_pairs]]\nid = \"signing-key\"\nprivate_key = \"{rsa}\"\n[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n"),
            vec!["client_credentials.default_key_pair: no key pair \"signing-kee\" is configured in [[key_pairs]] (did you mean `signing-key`?) (line 6, column 1)".into()],
        ),
    ];
    for (what, text, want) in &cases {
        assert_eq!(&check(text), want, "{what}:\n{text}");
    }
}

/// A `]` left out is reported right after the array's last value, on the line to edit, however
/// far down the parser noticed it; other syntax errors stay where the parser found them.
#[test]
fn a_syntax_error_is_reported_on_the_line_to_edit() {
    let route = "[[routes]]\nid = \"api\"\ndomains = [\"api.test\"]\n";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a key on the next line",
            format!("{HEAD}\n{route}targets = [\"http://127.0.0.1:9\"\npaths = [\"/\"]\n"),
            "invalid TOML at line 7, column 32: invalid array; expected `]`",
        ),
        (
            "a table after blank lines and comments",
            format!("{HEAD}\n{route}targets = [\"http://127.0.0.1:9\"   # the backend\n\n# its challenge\n[routes.challenge]\n"),
            "invalid TOML at line 7, column 32: invalid array; expected `]`",
        ),
        (
            "a value that holds a '#'",
            format!("{HEAD}\n{route}targets = [\"http://127.0.0.1:9/#x\"\n[routes.challenge]\n"),
            "invalid TOML at line 7, column 35: invalid array; expected `]`",
        ),
        (
            "after a comma the next line may hold the next value: it is the one to edit",
            format!("{HEAD}\n{route}targets = [\"http://127.0.0.1:9\",\npaths = [\"/\"]\n"),
            "invalid TOML at line 8, column 1: invalid array; expected `]`",
        ),
        (
            "an unclosed table header: on its line",
            format!("{HEAD}\n[[routes]\nid = \"api\"\n"),
            "invalid TOML at line 4, column 9: invalid table header; expected `.`, `]]`",
        ),
        (
            "a value missing after '=': on its line",
            "[gateway]\nhttp = = 1\n".into(),
            "invalid TOML at line 2, column 8: invalid string; expected `\"`, `'`",
        ),
    ];
    for (what, text, want) in &cases {
        assert_eq!(check(text), [*want], "{what}:\n{text}");
    }
}

#[test]
fn an_unreadable_file_is_one_line_without_an_os_error_number() {
    let path = Path::new("/nonexistent-torii/torii.toml");
    match load_file_checked(path, &env()) {
        Err(Rejected::Unreadable(why)) => assert_eq!(
            why,
            "cannot read /nonexistent-torii/torii.toml: No such file or directory"
        ),
        other => panic!("{other:?}"),
    }
}
