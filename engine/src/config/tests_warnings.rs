//! Tests of the configuration warnings: each rule fires on the setup it describes, with its key
//! path and position, and stays quiet on the shipped examples and on correct setups.

use super::tests::{ok, MINIMAL};
use super::*;

/// 2029-01-01T00:00:00Z.
const NOW: u64 = 1_861_920_000;

/// The warnings of `text` as printed, without their positions.
fn warned(text: &str) -> Vec<String> {
    warnings(&ok(text), NOW)
        .iter()
        .map(|w| match w.to_string().rfind(" (line ") {
            Some(at) => w.to_string()[..at].to_owned(),
            None => w.to_string(),
        })
        .collect()
}

/// The paths of the warnings of `text`.
fn paths(text: &str) -> Vec<String> {
    warnings(&ok(text), NOW)
        .into_iter()
        .map(|w| w.path)
        .collect()
}

const KEYED_ROUTE: &str = r#"
[[apikeys]]
client_id = "app"
client_secret = "an-api-key-secret"
routes = ["r"]
[routes.apikeys]
"#;

#[test]
fn a_correct_file_has_no_warning() {
    assert!(warned(MINIMAL).is_empty());
    assert!(warned(&format!("{MINIMAL}{KEYED_ROUTE}")).is_empty());
}

#[test]
fn the_shipped_examples_have_no_warning() {
    for name in ["basic.toml", "secured.toml"] {
        let text = super::tests_routes::example(name);
        assert_eq!(warned(&text), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn secure_token_service_without_https_listener() {
    let text = format!(
        "{MINIMAL}[client_credentials]\n[[key_pairs]]\nid = \"otoroshi-jwt-signing\"\nprivate_key = \"k.pem\"\n[[apikeys]]\nclient_id = \"c\"\nclient_secret = \"s\"\n"
    );
    let w = warnings(&ok(&text), NOW);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].path, "client_credentials.secure");
    assert!(
        w[0].message.contains("400 \"use a secure channel\""),
        "{w:?}"
    );
    // Said to be missing from the table, at its header, since `secure` is not written.
    assert!(
        w[0].message
            .ends_with("(missing from the table at line 8, column 1)"),
        "{w:?}"
    );
    let plain = text.replace(
        "[client_credentials]\n",
        "[client_credentials]\nsecure = false\n",
    );
    assert!(paths(&plain).is_empty());
}

#[test]
fn token_service_without_keys_or_key_pairs() {
    let text = format!("{MINIMAL}[client_credentials]\nsecure = false\n");
    let w = warned(&text);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("client_credentials: no [[apikeys]]"),
        "{w:?}"
    );
    assert!(w[1].contains("ephemeral P-256 key pair"), "{w:?}");
}

/// A secret written `"$NAME"`: the key path that holds it, `NAME`, and its key's line and
/// column.
type ShellSecret = (&'static str, &'static str, usize, usize);

/// The warning for a secret written `"$NAME"`, as printed at `line`:`col`.
fn shell_warning(path: &str, name: &str, line: usize, col: usize) -> String {
    format!(
        "{path}: looks like a shell variable: write \"${{env.{name}}}\" to read it from the environment (Torii does not expand shell syntax, so as written the secret is the text itself) (line {line}, column {col})"
    )
}

#[test]
fn every_secret_in_shell_syntax_is_named_at_its_key_never_quoted() {
    // What follows MINIMAL starts at line 8. Each row: the text, then the secrets written
    // `"$NAME"` with the key path that holds them (the file's names, never an internal
    // direction) and the position of their key.
    let rows: [(&str, &[ShellSecret]); 7] = [
        (
            "[routes.challenge]\nsecret = \"$CHALLENGE_SECRET\"\n",
            // Shared by both directions: one warning, not two.
            &[("routes[0].challenge.secret", "CHALLENGE_SECRET", 9, 1)],
        ),
        (
            "[routes.challenge]\n[routes.challenge.to_backend]\nsecret = \"$TO_BACKEND_SECRET\"\n[routes.challenge.from_backend]\n  secret = \"$FROM_BACKEND_SECRET\"\n",
            &[
                ("routes[0].challenge.to_backend.secret", "TO_BACKEND_SECRET", 10, 1),
                ("routes[0].challenge.from_backend.secret", "FROM_BACKEND_SECRET", 12, 3),
            ],
        ),
        (
            // A direction table that only names an algorithm uses the shared secret.
            "[routes.challenge]\nsecret = \"$SHARED_SECRET\"\n[routes.challenge.to_backend]\nalgorithm = \"HS256\"\n",
            &[("routes[0].challenge.secret", "SHARED_SECRET", 9, 1)],
        ),
        (
            "[routes.info_token]\nsecret = \"$CLAIM_SECRET\"\n",
            &[("routes[0].info_token.secret", "CLAIM_SECRET", 9, 1)],
        ),
        (
            "[routes.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"$JWT_SECRET\"\n",
            &[("routes[0].jwt.secret", "JWT_SECRET", 10, 1)],
        ),
        (
            "[[apikeys]]\nclient_id = \"a\"\nclient_secret = \"$API_SECRET\"\nroutes = [\"r\"]\n[routes.apikeys]\n",
            &[("apikeys[0].client_secret", "API_SECRET", 10, 1)],
        ),
        (
            // A literal secret is not warned about, and appears nowhere.
            "[routes.info_token]\nsecret = \"a-literal-secret-of-more-than-32-bytes\"\n",
            &[],
        ),
    ];
    for (section, expected) in rows {
        let text = format!("{MINIMAL}{section}");
        let got: Vec<String> = warnings(&ok(&text), NOW)
            .iter()
            .map(ToString::to_string)
            .collect();
        let want: Vec<String> = expected
            .iter()
            .map(|(path, name, l, c)| shell_warning(path, name, *l, *c))
            .collect();
        assert_eq!(got, want, "{section}");
        for w in &got {
            for (_, name, _, _) in expected {
                assert!(!w.contains(&format!("${name}")), "the value in: {w}");
            }
            assert!(!w.contains("a-literal-secret") && !w.contains("to_backend.secret\""));
        }
    }
    // A longer name is not a plausible variable name: the warning names no text at all.
    let long = format!("${}", "SECRET_".repeat(10));
    let text = format!("{MINIMAL}[routes.challenge]\nsecret = \"{long}\"\n");
    let w: Vec<String> = warnings(&ok(&text), NOW)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        w,
        ["routes[0].challenge.secret: looks like a shell variable: write \"${env.NAME}\" with the variable's name to read it from the environment (Torii does not expand shell syntax, so as written the secret is the text itself) (line 9, column 1)"]
    );
    // `${NAME}` is refused outright, with the fix in the message.
    let braces = format!("{MINIMAL}[routes.challenge]\nsecret = \"${{CHALLENGE_SECRET}}\"\n");
    let e = super::tests::errors(&braces);
    assert!(e[0].contains("write \"${env.CHALLENGE_SECRET}\""), "{e:?}");
}

#[test]
fn api_keys_that_can_never_be_used() {
    let none = format!("{MINIMAL}[[apikeys]]\nclient_id = \"a\"\nclient_secret = \"s\"\n");
    assert_eq!(paths(&none), ["apikeys[0].routes"]);
    let public = format!(
        "{MINIMAL}[[apikeys]]\nclient_id = \"a\"\nclient_secret = \"s\"\nroutes = [\"r\"]\n"
    );
    let w = warned(&public);
    assert_eq!(
        w,
        ["apikeys[0].routes[0]: route \"r\" has no [routes.apikeys]: it is public, so this key is never asked for there (add [routes.apikeys] to the route to require a key)"]
    );
    let expired = format!("{MINIMAL}{KEYED_ROUTE}").replace(
        "routes = [\"r\"]",
        "routes = [\"r\"]\nvalid_until = \"2028-12-31T23:59:59Z\"",
    );
    let p = paths(&expired);
    assert!(p.contains(&"apikeys[0].valid_until".to_owned()), "{p:?}");
    let later = expired.replace("2028-12-31", "2029-06-01");
    assert!(paths(&later).is_empty());
}

#[test]
fn a_key_for_tokens_only_is_fine_with_the_token_service() {
    // As the STS of the service-to-service example: a key with no route, used to get tokens.
    let text = "[gateway]\nhttps = [\"127.0.0.1:0\"]\n[[certificates]]\ncert = \"c.pem\"\nkey = \"c.key\"\n\
         [[key_pairs]]\nid = \"sts-1\"\nprivate_key = \"sts.key\"\n\
         [client_credentials]\ndefault_key_pair = \"sts-1\"\n\
         [[apikeys]]\nclient_id = \"a\"\nclient_secret = \"s\"\n";
    assert!(paths(text).is_empty(), "{:?}", warned(text));
}

#[test]
fn routes_that_no_key_may_call() {
    let alone = format!("{MINIMAL}[routes.apikeys]\n");
    let w = warned(&alone);
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("routes[0].apikeys: no enabled [[apikeys]] entry lists route \"r\""),
        "{w:?}"
    );
    let disabled = format!("{MINIMAL}{KEYED_ROUTE}")
        .replace("routes = [\"r\"]", "routes = [\"r\"]\nenabled = false");
    assert_eq!(paths(&disabled), ["routes[0].apikeys"]);
    let id_only = format!("{MINIMAL}{KEYED_ROUTE}extractors = [\"client_id\"]\n");
    let w = warned(&id_only);
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("routes[0].apikeys.extractors: no extractor of this route can admit a key (client_id admits only keys with allow_client_id_only"),
        "{w:?}"
    );
    let allowed = id_only.replace(
        "routes = [\"r\"]",
        "routes = [\"r\"]\nallow_client_id_only = true",
    );
    assert!(paths(&allowed).is_empty());
    let bearer_only = format!("{MINIMAL}{KEYED_ROUTE}extractors = [\"bearer\"]\n");
    let w = warned(&bearer_only);
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("bearer needs tokens"), "{w:?}");
    let with_pairs = format!("{bearer_only}[[key_pairs]]\nid = \"k\"\nprivate_key = \"k.pem\"\n");
    assert!(paths(&with_pairs).is_empty());
}

#[test]
fn rsa_signatures_per_request_are_costed() {
    let text = format!(
        "{MINIMAL}[routes.challenge]\nalgorithm = \"PS256\"\nprivate_key = \"k.pem\"\npublic_key = \"p.pem\"\n[routes.info_token]\nalgorithm = \"RS256\"\nprivate_key = \"k.pem\"\n"
    );
    let w = warned(&text);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("routes[0].info_token.algorithm: RS256 signs the info token with RSA on every request, about 0.6-0.8 ms"), "{w:?}");
    assert!(
        w[1].starts_with("routes[0].challenge.algorithm: PS256 signs the challenge token"),
        "{w:?}"
    );
    assert!(w.iter().all(|w| w.contains("ES256") && w.contains("HS512")));
    // Split directions: reported where the algorithm is written; verifying with RSA is cheap.
    let split = format!(
        "{MINIMAL}[routes.challenge]\n[routes.challenge.to_backend]\nalgorithm = \"RS512\"\nprivate_key = \"k.pem\"\n[routes.challenge.from_backend]\nalgorithm = \"RS512\"\npublic_key = \"p.pem\"\n"
    );
    assert_eq!(paths(&split), ["routes[0].challenge.to_backend.algorithm"]);
    let verify_only = split.replace("RS512\"\nprivate_key", "ES256\"\nprivate_key");
    assert!(paths(&verify_only).is_empty());
    // V1 signs nothing; ES256 and HS* are not warned about.
    let v1 = format!("{MINIMAL}[routes.challenge]\nversion = \"v1\"\nalgorithm = \"RS256\"\n");
    assert!(paths(&v1).is_empty());
    let es =
        format!("{MINIMAL}[routes.info_token]\nalgorithm = \"ES256\"\nprivate_key = \"k.pem\"\n");
    assert!(paths(&es).is_empty());
}

#[test]
fn one_header_for_two_tokens() {
    let text = format!(
        "{MINIMAL}[routes.challenge]\nsecret = \"${{env.CHALLENGE_SECRET}}\"\n[routes.info_token]\nheader = \"otoroshi-state\"\nsecret = \"${{env.CHALLENGE_SECRET}}\"\n"
    );
    assert_eq!(paths(&text), ["routes[0].info_token.header"]);
}

#[test]
fn admin_on_every_interface() {
    let text = MINIMAL.replace("[gateway]", "[gateway]\nadmin = \"0.0.0.0:9900\"");
    let w = warnings(&ok(&text), NOW);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].path, "gateway.admin");
    assert!(w[0].message.ends_with("(line 3, column 1)"), "{w:?}");
    let lo = MINIMAL.replace("[gateway]", "[gateway]\nadmin = \"127.0.0.1:9900\"");
    assert!(paths(&lo).is_empty());
}
