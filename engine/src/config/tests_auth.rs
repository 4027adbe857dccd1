//! Tests of the machine-authentication sections: `[[apikeys]]`, `[[key_pairs]]`,
//! `[client_credentials]` and `[routes.apikeys]`: defaults, and every error with its key path.

use super::tests::{errors, ok, MINIMAL};

#[test]
fn apikeys_defaults_and_values() {
    let c = ok(&format!(
        "{MINIMAL}[routes.apikeys]\n\
         [[apikeys]]\nclient_id = \"k\"\nclient_secret = \"${{env.MY_SECRET}}\"\nroutes = [\"r\"]\n\
         [[apikeys]]\nclient_id = \"k2\"\nclient_secret = \"lit\"\nname = \"Two\"\nenabled = false\n\
         allow_client_id_only = true\nvalid_until = \"2030-01-01T01:00:00+01:00\"\n"
    ));
    let a = &c.auth.apikeys;
    assert_eq!(a.len(), 2);
    assert_eq!(
        (a[0].name.as_str(), a[0].enabled, a[0].allow_client_id_only),
        ("k", true, false)
    );
    assert_eq!(a[0].routes, ["r"]);
    assert_eq!(
        (a[1].name.as_str(), a[1].enabled, a[1].allow_client_id_only),
        ("Two", false, true)
    );
    assert_eq!(a[1].valid_until, Some(1_893_456_000));
    let r = c.routes[0].apikeys.as_ref();
    let all = r.map(|r| {
        (
            r.client_id,
            r.headers,
            r.bearer,
            r.basic,
            r.wipe_credentials,
        )
    });
    assert_eq!(all, Some((true, true, true, true, true)));
    assert!(c.auth.client_credentials.is_none());
}

#[test]
fn apikeys_errors_have_paths() {
    let text = format!(
        "{MINIMAL}[[apikeys]]\nclient_id = \" \"\nclient_secret = \"s\"\n\
         [[apikeys]]\nclient_id = \"a\"\nroutes = [\"r\", \"nope\"]\nvalid_until = \"2030-01-01\"\n\
         [[apikeys]]\nclient_id = \"a\"\nclient_secret = \"${{env.UNSET_VAR}}\"\n\
         metadata = {{ \"jwt-sign-keypair\" = \"missing\" }}\n"
    );
    assert_eq!(
        errors(&text),
        [
            "apikeys[0].client_id: must not be blank",
            "apikeys[1].client_secret: required",
            "apikeys[1].valid_until: \"2030-01-01\" is not an RFC 3339 date-time such as \"2030-01-01T00:00:00Z\"",
            "apikeys[1].routes[1]: no route has the id \"nope\"",
            "apikeys[2].client_id: duplicate client_id \"a\"",
            "apikeys[2].client_secret: environment variable UNSET_VAR is not set",
        ]
    );
    let unknown = errors(&format!(
        "{MINIMAL}[[apikeys]]\nclient_id = \"a\"\nsecrett = \"s\"\n"
    ));
    assert_eq!(
        unknown,
        [
            "apikeys[0].secrett: unknown key",
            "apikeys[0].client_secret: required"
        ]
    );
}

#[test]
fn key_pairs_and_client_credentials() {
    let c = ok(&format!(
        "{MINIMAL}[client_credentials]\n\
         [[apikeys]]\nclient_id = \"a\"\nclient_secret = \"s\"\n\
         metadata = {{ \"jwt-sign-keypair\" = \"otoroshi-jwt-signing\" }}\n"
    ));
    let cc = c.auth.client_credentials.as_ref().map(|cc| {
        (
            cc.secure,
            cc.expiration.as_secs(),
            cc.default_key_pair.as_str(),
            cc.domain.is_match("any.host"),
        )
    });
    assert_eq!(cc, Some((true, 3600, "otoroshi-jwt-signing", true)));
    let c = ok(&format!(
        "{MINIMAL}[client_credentials]\ndomain = \"oauth\\\\.oto\\\\.tools\"\nsecure = false\n\
         expiration = \"10m\"\ndefault_key_pair = \"kp\"\n\
         [[key_pairs]]\nid = \"kp\"\nprivate_key = \"k.pem\"\n"
    ));
    let cc = c.auth.client_credentials.as_ref().map(|cc| {
        let d = &cc.domain;
        (
            cc.secure,
            cc.expiration.as_secs(),
            d.is_match("oauth.oto.tools"),
            d.is_match("xoauth.oto.tools"),
        )
    });
    assert_eq!(cc, Some((false, 600, true, false)));
    let text = format!(
        "{MINIMAL}[client_credentials]\nexpiration = \"0s\"\ndefault_key_pair = \"other\"\n\
         [[key_pairs]]\nid = \"kp\"\n[[key_pairs]]\nid = \"kp\"\nprivate_key = \"b.pem\"\n\
         [[apikeys]]\nclient_id = \"a\"\nclient_secret = \"s\"\nmetadata = {{ \"jwt-sign-keypair\" = \"zz\" }}\n"
    );
    let errs = errors(&text);
    assert_eq!(errs[0], "key_pairs[0].private_key: required");
    assert_eq!(errs[1], "key_pairs[1].id: duplicate key pair id \"kp\"");
    assert_eq!(
        errs[2],
        "client_credentials.expiration: duration must be greater than zero"
    );
    assert_eq!(
        &errs[3..],
        [
            "apikeys[0].metadata.jwt-sign-keypair: no key pair \"zz\" is configured in [[key_pairs]]",
            "client_credentials.default_key_pair: no key pair \"other\" is configured in [[key_pairs]]",
        ]
    );
}

#[test]
fn domain_regex_errors() {
    let errs = errors(&format!("{MINIMAL}[client_credentials]\ndomain = \"(\"\n"));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("client_credentials.domain: invalid regex"),
        "{errs:?}"
    );
}

#[test]
fn route_apikeys_section() {
    let c = ok(&format!(
        "{MINIMAL}[routes.apikeys]\nextractors = [\"bearer\"]\nwipe_credentials = false\n\
         custom_headers = {{ client_id = \"X-Client\", client_secret = \"X-Secret\" }}\n"
    ));
    let r = c.routes[0].apikeys.as_ref().map(|r| {
        (
            r.client_id,
            r.headers,
            r.bearer,
            r.basic,
            r.wipe_credentials,
            r.custom.clone(),
        )
    });
    let custom = Some(("X-Client".to_owned(), "X-Secret".to_owned()));
    assert_eq!(r, Some((false, false, true, false, false, custom)));
    assert_eq!(
        errors(&format!(
            "{MINIMAL}[routes.apikeys]\nextractors = [\"basic\", \"jwt\", \"basic\"]\n\
             custom_headers = {{ client_id = \"bad header\" }}\n"
        )),
        [
            "routes[0].apikeys.extractors[1]: unknown extractor \"jwt\" (expected one of client_id, headers, bearer, basic)",
            "routes[0].apikeys.extractors[2]: duplicate extractor \"basic\"",
            "routes[0].apikeys.custom_headers.client_secret: required with client_id",
        ]
    );
    assert_eq!(
        errors(&format!("{MINIMAL}[routes.apikeys]\nextractors = []\n")),
        ["routes[0].apikeys.extractors: no extractor and no custom_headers: no request could ever pass"]
    );
}
