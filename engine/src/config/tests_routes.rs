//! Tests of route validation: ids, domains, paths, targets, cross-route conflicts, the challenge
//! and info token sections, and the shipped examples.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::tests::{errors, ok, MINIMAL};
use super::*;

fn route(body: &str) -> String {
    format!("[gateway]\nhttp = [\"127.0.0.1:8080\"]\n[[routes]]\n{body}\n")
}

fn with_challenge(body: &str) -> String {
    format!("{MINIMAL}[routes.challenge]\n{body}\n")
}

#[test]
fn route_required_keys() {
    assert_eq!(
        errors(&route("name = \"\"")),
        [
            "routes[0].id: required",
            "routes[0].name: must not be empty",
            "routes[0].domains: required",
            "routes[0].targets: required",
        ]
    );
    assert_eq!(
        errors(&route("id = \"\"\ndomains = []\npaths = []\ntargets = []")),
        [
            "routes[0].id: must not be empty",
            "routes[0].domains: must not be empty",
            "routes[0].paths: must not be empty",
            "routes[0].targets: must not be empty",
        ]
    );
}

#[test]
fn domains_are_normalised_and_checked() {
    let c = ok(&route(
        "id = \"r\"\ndomains = [\"API.Oto.Tools\", \"*.Api.oto.tools\", \"[::1]\", \"127.0.0.1\"]\ntargets = [\"http://127.0.0.1:1\"]",
    ));
    assert_eq!(
        c.routes[0].domains,
        ["api.oto.tools", "*.api.oto.tools", "[::1]", "127.0.0.1"]
    );
    let bad = route(
        "id = \"r\"\ndomains = [\"a.test:8080\", \"a.*.test\", \"*x\", \"a.test.\", \"a..test\", \"\", \"é.test\", \"[::1]:80\", \"a.test\", \"A.test\"]\ntargets = [\"http://127.0.0.1:1\"]",
    );
    let errs = errors(&bad);
    let paths: Vec<&str> = errs.iter().filter_map(|e| e.split(':').next()).collect();
    assert_eq!(
        paths,
        [
            "routes[0].domains[0]",
            "routes[0].domains[1]",
            "routes[0].domains[2]",
            "routes[0].domains[3]",
            "routes[0].domains[4]",
            "routes[0].domains[5]",
            "routes[0].domains[6]",
            "routes[0].domains[7]",
            "routes[0].domains[9]",
        ],
        "{errs:#?}"
    );
    assert!(errs[0].ends_with("must not contain a port"));
    assert!(errs[3].ends_with("must not end with a dot"));
    assert!(errs[8].contains("duplicate entry"));
}

#[test]
fn paths_are_checked() {
    let errs = errors(&route(
        "id = \"r\"\ndomains = [\"a.test\"]\npaths = [\"api\", \"/a b\", \"/ok\", \"/ok\"]\ntargets = [\"http://127.0.0.1:1\"]",
    ));
    assert_eq!(
        errs,
        [
            "routes[0].paths[0]: path \"api\" must start with '/'",
            "routes[0].paths[1]: path \"/a b\" contains a space, a control character, '#' or '?'",
            "routes[0].paths[3]: duplicate entry \"/ok\"",
        ]
    );
}

#[test]
fn paths_must_be_canonical() {
    let errs = errors(&route(
        "id = \"r\"\ndomains = [\"a.test\"]\npaths = [\"/a/../b\", \"/%61pi\", \"//x\", \"/a%2fb\", \"/..\", \"/q?x\", \"/fine;v=1\", \"/%C3%A9\"]\ntargets = [\"http://127.0.0.1:1\"]",
    ));
    assert_eq!(errs.len(), 6, "{errs:#?}");
    assert!(
        errs[0].starts_with(
            "routes[0].paths[0]: path \"/a/../b\" is not in canonical form: write \"/b\""
        ),
        "{errs:#?}"
    );
    assert!(errs[1].contains("write \"/api\""), "{errs:#?}");
    assert!(errs[2].contains("write \"/x\""), "{errs:#?}");
    assert!(
        errs[3].starts_with("routes[0].paths[3]: path \"/a%2fb\" can never match")
            && errs[3].ends_with("(path.encoded_slash)"),
        "{errs:#?}"
    );
    assert!(errs[4].ends_with("(path.above_root)"), "{errs:#?}");
    assert!(
        errs[5].starts_with("routes[0].paths[5]:") && errs[5].contains("'?'"),
        "{errs:#?}"
    );
}

#[test]
fn the_catch_all_domain_and_path_normalization() {
    let c = ok(&route(
        "id = \"r\"\ndomains = [\"*\"]\npath_normalization = \"refuse_ambiguous\"\ntargets = [\"http://127.0.0.1:1\"]",
    ));
    assert_eq!(c.routes[0].domains, ["*"]);
    assert_eq!(
        c.routes[0].path_normalization,
        crate::config::PathNormalization::RefuseAmbiguous
    );
    let errs = errors(&route(
        "id = \"r\"\ndomains = [\"a.test\"]\npath_normalization = \"raw\"\ntargets = [\"http://127.0.0.1:1\"]",
    ));
    assert_eq!(
        errs,
        ["routes[0].path_normalization: unknown mode \"raw\" (expected \"canonical\", \"refuse_ambiguous\" or \"forward_raw\")"]
    );
}

#[test]
fn targets_are_parsed_and_resolved() {
    let c = ok(&route(
        "id = \"r\"\ndomains = [\"a.test\"]\ntargets = [\"http://127.0.0.1:9001\", \"HTTP://LocalHost\", \"http://[::1]:8080/\", \"http://backend.internal:80\"]",
    ));
    let t = &c.routes[0].targets;
    assert_eq!(t[0].addr, SocketAddr::from(([127, 0, 0, 1], 9001)));
    assert_eq!(t[0].host_header, "127.0.0.1:9001");
    assert_eq!(t[0].url, "http://127.0.0.1:9001");
    assert_eq!((t[1].host.as_str(), t[1].port), ("localhost", 80));
    assert_eq!(t[1].host_header, "localhost");
    assert_eq!(t[2].host, "::1");
    assert_eq!(t[2].host_header, "[::1]:8080");
    assert_eq!(t[3].addr, SocketAddr::from(([10, 0, 0, 7], 80)));
    assert_eq!(t[3].scheme, Scheme::Http);
}

#[test]
fn target_errors() {
    let errs = errors(&route(
        "id = \"r\"\ndomains = [\"a.test\"]\ntargets = [\"127.0.0.1:9001\", \"http://127.0.0.1:9001/api\", \"http://127.0.0.1:0\", \"http://127.0.0.1:99999\", \"http://u@h:1\", \"http://nowhere.invalid:1\", \"https://127.0.0.1\", \"http://:80\", \"http://[::1\"]",
    ));
    // `https://127.0.0.1` (index 6) is valid.
    assert_eq!(errs.len(), 8, "{errs:#?}");
    for (e, i) in errs.iter().zip([0, 1, 2, 3, 4, 5, 7, 8]) {
        assert!(e.starts_with(&format!("routes[0].targets[{i}]: ")), "{e}");
    }
    assert!(errs[1].contains("must not have a path"));
    assert!(errs[5].contains("cannot resolve \"nowhere.invalid\""));
}

#[test]
fn route_conflicts() {
    let text = format!(
        "{MINIMAL}[[routes]]\nid = \"r\"\ndomains = [\"b.test\"]\ntargets = [\"http://127.0.0.1:1\"]\n\
         [[routes]]\nid = \"r3\"\ndomains = [\"b.test\", \"A.TEST\"]\npaths = [\"/\"]\ntargets = [\"http://127.0.0.1:1\"]\n\
         load_balancing = \"spread\"\n"
    );
    assert_eq!(
        errors(&text),
        [
            "routes[2].load_balancing: unknown policy \"spread\" (expected \"round_robin\", \"least_request\", \"random\" or \"hash\")",
            "routes[1].id: duplicate id \"r\" (also routes[0])",
            "routes[2].domains[0]: b.test/ is already served by routes[1] (\"r\")",
            "routes[2].domains[1]: a.test/ is already served by routes[0] (\"r\")",
        ]
    );
    // Same domain on different paths is fine.
    ok(&format!(
        "{MINIMAL}[[routes]]\nid = \"r2\"\ndomains = [\"a.test\"]\npaths = [\"/api\"]\ntargets = [\"http://127.0.0.1:1\"]\n"
    ));
}

#[test]
fn route_tls_and_jwt_sections_are_validated() {
    let text =
        format!("{MINIMAL}upstream_tls = {{ ca = \"ca.pem\" }}\n[routes.jwt]\nissuer = \"x\"\n");
    assert_eq!(
        errors(&text),
        [
            "routes[0].upstream_tls: applies to https:// targets only, and the route has none",
            "routes[0].jwt.algorithms: required: the algorithms tokens may use",
            "routes[0].jwt: one of jwks_file, jwks_url, public_key or secret is required",
        ]
    );
}

#[test]
fn challenge_defaults() {
    let c = ok(&with_challenge("secret = \"${env.CHALLENGE_SECRET}\""));
    let Some(ch) = c.routes[0].challenge.as_ref() else {
        panic!("no challenge")
    };
    assert_eq!(ch.version, ChallengeVersion::V2);
    assert_eq!(
        (ch.ttl, ch.leeway),
        (Duration::from_secs(30), Duration::from_secs(10))
    );
    assert_eq!(ch.request_header, "Otoroshi-State");
    assert_eq!(ch.response_header, "Otoroshi-State-Resp");
    assert_eq!(ch.to_backend.algorithm, "HS512");
    assert_eq!(ch.to_backend, ch.from_backend);
    assert_eq!(
        ch.to_backend.secret.as_ref().map(RawSecret::expose_raw),
        Some("${env.CHALLENGE_SECRET}")
    );
    assert!(ch.exclude.is_empty());
}

#[test]
fn challenge_v1_needs_no_key() {
    let c = ok(&with_challenge(
        "version = \"v1\"\nexclude = [\"^/health$\"]",
    ));
    let ch = c.routes[0].challenge.as_ref();
    assert_eq!(ch.map(|c| c.version), Some(ChallengeVersion::V1));
    assert_eq!(ch.map(|c| c.exclude[0].is_match("/health")), Some(true));
}

#[test]
fn challenge_errors_are_all_collected() {
    let errs = errors(&with_challenge(
        "version = \"v3\"\nttl = \"0s\"\nleeway = \"-1s\"\nrequest_header = \"Bad Header\"\nresponse_header = \"otoroshi-state\"\n\
         algorithm = \"none\"\nexclude = [\"(\", \"^/ok$\"]",
    ));
    assert_eq!(
        errs,
        [
            "routes[0].challenge.version: unknown version \"v3\" (expected \"v1\" or \"v2\")",
            "routes[0].challenge.ttl: duration must be greater than zero",
            "routes[0].challenge.leeway: invalid duration \"-1s\": a number is expected at each part's start; expected a number and a unit (ms, s, m, h, d), or several from the largest unit to the smallest, such as \"30s\", \"1h30m\" or \"1.5s\"",
            "routes[0].challenge.request_header: \"Bad Header\" is not a valid HTTP header name",
            "routes[0].challenge.response_header: must differ from request_header",
            "routes[0].challenge.algorithm: unknown algorithm \"none\" (expected one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384)",
            "routes[0].challenge.secret: required for HS512",
            "routes[0].challenge.exclude[0]: invalid regex: unclosed group",
        ]
    );
}

#[test]
fn challenge_secret_references() {
    assert_eq!(
        errors(&with_challenge("secret = \"${env.NOPE}\"")),
        ["routes[0].challenge.secret: environment variable NOPE is not set"]
    );
    let c = ok(&with_challenge("secret = \"${file:keys/hmac}\""));
    let s = c.routes[0]
        .challenge
        .as_ref()
        .and_then(|c| c.to_backend.secret.clone());
    assert_eq!(
        s.as_ref().map(RawSecret::expose_raw),
        Some("${file:/etc/torii/keys/hmac}")
    );
    assert!(errors(&with_challenge("secret = \"${nope\"")).len() == 1);
}

#[test]
fn challenge_split_directions() {
    let c = ok(&with_challenge(
        "algorithm = \"HS256\"\nsecret = \"${env.CHALLENGE_SECRET}\"\n\
         [routes.challenge.to_backend]\nalgorithm = \"ES256\"\nprivate_key = \"keys/gw.pem\"\n\
         [routes.challenge.from_backend]\nalgorithm = \"RS512\"\npublic_key = \"/abs/backend.pub\"",
    ));
    let Some(ch) = c.routes[0].challenge.as_ref() else {
        panic!("no challenge")
    };
    assert_eq!(ch.to_backend.algorithm, "ES256");
    assert_eq!(
        ch.to_backend.private_key,
        Some(PathBuf::from("/etc/torii/keys/gw.pem"))
    );
    assert!(ch.to_backend.secret.is_none());
    assert_eq!(
        ch.from_backend.public_key,
        Some(PathBuf::from("/abs/backend.pub"))
    );
    assert!(!ch.from_backend.is_hmac());

    // A direction with only an algorithm reuses the shared key.
    let c = ok(&with_challenge(
        "secret = \"${env.CHALLENGE_SECRET}\"\n[routes.challenge.from_backend]\nalgorithm = \"HS256\"",
    ));
    let ch = c.routes[0].challenge.as_ref();
    assert_eq!(ch.map(|c| c.from_backend.algorithm.as_str()), Some("HS256"));
    assert_eq!(ch.map(|c| c.to_backend.algorithm.as_str()), Some("HS512"));
    assert!(ch.is_some_and(|c| c.from_backend.secret.is_some()));
}

#[test]
fn challenge_key_material_must_fit_the_algorithm() {
    assert_eq!(
        errors(&with_challenge(
            "[routes.challenge.to_backend]\nalgorithm = \"RS256\"\nsecret = \"x\"\n\
             [routes.challenge.from_backend]\nalgorithm = \"HS256\"\npublic_key = \"k.pem\""
        )),
        [
            "routes[0].challenge.to_backend.secret: RS256 takes private_key/public_key files, not a secret",
            "routes[0].challenge.to_backend.private_key: required for RS256",
            "routes[0].challenge.from_backend.public_key: HS256 takes a secret, not key files",
            "routes[0].challenge.from_backend.secret: required for HS256",
        ]
    );
    assert_eq!(
        errors(&with_challenge(
            "algorithm = \"PS256\"\npublic_key = \"k.pem\""
        )),
        ["routes[0].challenge.private_key: required for PS256"]
    );
}

#[test]
fn info_token_defaults_and_errors() {
    let c = ok(&format!(
        "{MINIMAL}[routes.info_token]\nsecret = \"${{env.CLAIM_SHAREDKEY}}\"\n"
    ));
    let it = c.routes[0].info_token.as_ref();
    assert_eq!(it.map(|i| i.version), Some(InfoTokenVersion::Latest));
    assert_eq!(it.map(|i| i.header.as_str()), Some("Otoroshi-Claim"));
    assert_eq!(it.map(|i| i.ttl), Some(Duration::from_secs(30)));
    assert_eq!(it.map(|i| i.algo.algorithm.as_str()), Some("HS512"));

    let c = ok(&format!(
        "{MINIMAL}[routes.info_token]\nversion = \"legacy\"\nalgorithm = \"ES384\"\nprivate_key = \"claim.pem\"\n"
    ));
    let it = c.routes[0].info_token.as_ref();
    assert_eq!(it.map(|i| i.version), Some(InfoTokenVersion::Legacy));
    assert_eq!(
        it.and_then(|i| i.algo.private_key.clone()),
        Some(PathBuf::from("/etc/torii/claim.pem"))
    );

    assert_eq!(
        errors(&format!("{MINIMAL}[routes.info_token]\nversion = \"url\"\nheader = \"\"\n")),
        [
            "routes[0].info_token.version: the \"url\" layout is not supported (use \"latest\" or \"legacy\")",
            "routes[0].info_token.header: \"\" is not a valid HTTP header name",
            "routes[0].info_token.secret: required for HS512",
        ]
    );
    assert_eq!(
        errors(&format!(
            "{MINIMAL}[routes.info_token]\nalgorithm = \"RS256\"\n"
        )),
        ["routes[0].info_token.private_key: required for RS256"]
    );
}

pub(super) fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

#[test]
fn examples_load() {
    let basic = ok(&example("basic.toml"));
    assert_eq!(basic.routes[0].targets[0].url, "http://127.0.0.1:9001");
    let secured = ok(&example("secured.toml"));
    let versions: Vec<_> = secured
        .routes
        .iter()
        .filter_map(|r| r.challenge.as_ref().map(|c| c.version))
        .collect();
    assert_eq!(versions, [ChallengeVersion::V1, ChallengeVersion::V2]);
    assert!(secured.routes.iter().any(|r| r.info_token.is_some()));
    // Without the variable, the secured example names it.
    let no_env = load_str_with_env(&example("secured.toml"), Path::new("."), &MapEnv::default());
    assert!(matches!(no_env, Err(e) if e.to_string().contains("CHALLENGE_SECRET is not set")));
}
