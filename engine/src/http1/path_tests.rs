//! Table tests of the path canonicaliser: RFC 3986 §5.4 examples, encoded forms, refusals,
//! and properties (idempotence, no panic) over generated inputs.

#![allow(clippy::unwrap_used)]

use super::*;

/// The canonical form, or the refusal.
fn canon(path: &str) -> Result<String, PathError> {
    canon_with(path, true)
}

fn canon_with(path: &str, merge: bool) -> Result<String, PathError> {
    let mut out = Vec::new();
    let changed = canonicalize_path(path.as_bytes(), merge, &mut out)?;
    if !changed {
        // Unchanged paths either leave `out` empty (fast path) or equal to the input.
        assert!(out.is_empty() || out == path.as_bytes(), "{path:?}");
        return Ok(path.to_owned());
    }
    assert_ne!(out, path.as_bytes(), "changed but equal: {path:?}");
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn plain_paths_are_unchanged_and_cost_no_copy() {
    for p in [
        "/",
        "/a",
        "/a/b/c",
        "/a/",
        "/private/secret.txt",
        "/a.b/c..d/e.",
        "/~user/x-y_z",
        "/private;x",
        "/a;b=c/d",
    ] {
        let mut out = Vec::new();
        assert_eq!(canonicalize_path(p.as_bytes(), true, &mut out), Ok(false));
        assert!(out.is_empty(), "{p:?} was copied");
        assert!(is_plainly_canonical(p.as_bytes()), "{p:?}");
    }
}

/// RFC 3986 §5.4.1 and §5.4.2 against the base `http://a/b/c/d;p?q`, written as the
/// absolute paths a client would send after the base's directory `/b/c/`.
#[test]
fn rfc3986_section_5_4_examples() {
    let normal = [
        ("/b/c/g", "/b/c/g"),
        ("/b/c/./g", "/b/c/g"),
        ("/b/c/g/", "/b/c/g/"),
        ("/g", "/g"),
        ("/b/c/d;p", "/b/c/d;p"),
        ("/b/c/g;x", "/b/c/g;x"),
        ("/b/c/.", "/b/c/"),
        ("/b/c/./", "/b/c/"),
        ("/b/c/..", "/b/"),
        ("/b/c/../", "/b/"),
        ("/b/c/../g", "/b/g"),
        ("/b/c/../..", "/"),
        ("/b/c/../../", "/"),
        ("/b/c/../../g", "/g"),
    ];
    let abnormal = [
        ("/b/c/g.", "/b/c/g."),
        ("/b/c/.g", "/b/c/.g"),
        ("/b/c/g..", "/b/c/g.."),
        ("/b/c/..g", "/b/c/..g"),
        ("/b/c/./../g", "/b/g"),
        ("/b/c/./g/.", "/b/c/g/"),
        ("/b/c/g/./h", "/b/c/g/h"),
        ("/b/c/g/../h", "/b/c/h"),
        ("/b/c/g;x=1/./y", "/b/c/g;x=1/y"),
        ("/b/c/g;x=1/../y", "/b/c/y"),
    ];
    for (input, want) in normal.iter().chain(abnormal.iter()) {
        assert_eq!(canon(input).as_deref(), Ok(*want), "{input:?}");
    }
    // Where RFC 3986 clamps at the root ("../../../g" → "/g"), Torii refuses.
    for input in ["/b/c/../../../g", "/b/c/../../../../g", "/./../g", "/../g"] {
        assert_eq!(canon(input), Err(PathError::AboveRoot), "{input:?}");
    }
}

#[test]
fn the_review_vectors_resolve_to_the_private_path_or_are_refused() {
    assert_eq!(
        canon("/public/../private/secret.txt").as_deref(),
        Ok("/private/secret.txt")
    );
    assert_eq!(
        canon("/public/%2e%2e/private/secret.txt").as_deref(),
        Ok("/private/secret.txt")
    );
    assert_eq!(
        canon("/public/%2E%2E/private/secret.txt").as_deref(),
        Ok("/private/secret.txt")
    );
    assert_eq!(canon("/public/.%2e/private/x").as_deref(), Ok("/private/x"));
    assert_eq!(
        canon("/public/..%2fprivate/x"),
        Err(PathError::EncodedSlash)
    );
    assert_eq!(
        canon("/public/%2E%2E%2Fprivate%2Fsecret.txt"),
        Err(PathError::EncodedSlash)
    );
    assert_eq!(
        canon("/public/..;/private"),
        Err(PathError::DotSegmentParameter)
    );
    assert_eq!(
        canon("/public/.;x/private"),
        Err(PathError::DotSegmentParameter)
    );
    assert_eq!(
        canon("/public/%2e%2e;a=b/private"),
        Err(PathError::DotSegmentParameter)
    );
    assert_eq!(canon("/public\\..\\private"), Err(PathError::Backslash));
    assert_eq!(
        canon("/public/%5c../private"),
        Err(PathError::EncodedBackslash)
    );
    assert_eq!(canon("/%70rivate/x").as_deref(), Ok("/private/x"));
}

#[test]
fn percent_encodings() {
    // Unreserved characters are decoded, in either hex case.
    assert_eq!(canon("/%41%7a%30%2D%2e%5F%7E").as_deref(), Ok("/Az0-._~"));
    // Reserved and other bytes stay encoded, with upper-case hex digits.
    assert_eq!(canon("/a%3fb%3Bc%20d").as_deref(), Ok("/a%3Fb%3Bc%20d"));
    assert_eq!(canon("/%e2%82%ac").as_deref(), Ok("/%E2%82%AC"));
    assert_eq!(canon("/%25").as_deref(), Ok("/%25"));
    // Already canonical encodings are unchanged.
    assert_eq!(canon("/a%3Fb").as_deref(), Ok("/a%3Fb"));
    for bad in ["/%", "/%4", "/%zz", "/a%g1", "/%%41", "/a/%"] {
        assert_eq!(
            canon(bad),
            Err(PathError::InvalidPercentEncoding),
            "{bad:?}"
        );
    }
    assert_eq!(canon("/a%00b"), Err(PathError::Nul));
    assert_eq!(canon("/a\0b"), Err(PathError::Nul));
    assert_eq!(canon("/a%2f"), Err(PathError::EncodedSlash));
    assert_eq!(canon("/a%2F"), Err(PathError::EncodedSlash));
    assert_eq!(canon("/a%5C"), Err(PathError::EncodedBackslash));
    // A decoded '%' does not start another escape.
    assert_eq!(canon("/%2541").as_deref(), Ok("/%2541"));
}

#[test]
fn slashes() {
    assert_eq!(canon("//").as_deref(), Ok("/"));
    assert_eq!(canon("/a//b").as_deref(), Ok("/a/b"));
    assert_eq!(canon("//a///b//").as_deref(), Ok("/a/b/"));
    assert_eq!(canon("/a//../b").as_deref(), Ok("/b"));
    assert_eq!(canon("//.."), Err(PathError::AboveRoot));
    // Without merging, empty segments are kept and `..` removes one of them (RFC 3986).
    assert_eq!(canon_with("/a//b", false).as_deref(), Ok("/a//b"));
    assert_eq!(canon_with("/a//../b", false).as_deref(), Ok("/a/b"));
    assert_eq!(canon_with("//a/./b", false).as_deref(), Ok("//a/b"));
}

#[test]
fn dot_segments_at_the_edges() {
    assert_eq!(canon("/.").as_deref(), Ok("/"));
    assert_eq!(canon("/./").as_deref(), Ok("/"));
    assert_eq!(canon("/./.").as_deref(), Ok("/"));
    assert_eq!(canon("/a/..").as_deref(), Ok("/"));
    assert_eq!(canon("/a/b/..").as_deref(), Ok("/a/"));
    assert_eq!(canon("/a/./b/.").as_deref(), Ok("/a/b/"));
    assert_eq!(canon("/..."), Ok("/...".to_owned()));
    assert_eq!(canon("/..a/b").as_deref(), Ok("/..a/b"));
    assert_eq!(canon("/.."), Err(PathError::AboveRoot));
    assert_eq!(canon("/a/../.."), Err(PathError::AboveRoot));
    assert_eq!(canon("/%2e%2e"), Err(PathError::AboveRoot));
    // Segments that merely contain dots and parameters are ordinary.
    assert_eq!(canon("/a/.../b;.."), Ok("/a/.../b;..".to_owned()));
    assert_eq!(canon("/a/x;../b"), Ok("/a/x;../b".to_owned()));
}

#[test]
fn not_absolute() {
    assert_eq!(canon(""), Err(PathError::NotAbsolute));
    assert_eq!(canon("a/b"), Err(PathError::NotAbsolute));
    assert_eq!(canon("*"), Err(PathError::NotAbsolute));
}

#[test]
fn overlong_inputs() {
    let deep = "/a".repeat(4000) + &"/..".repeat(4000);
    assert_eq!(canon(&deep).as_deref(), Ok("/"));
    let too_deep = "/a".repeat(4000) + &"/..".repeat(4001);
    assert_eq!(canon(&too_deep), Err(PathError::AboveRoot));
    let slashes = "/".repeat(8000) + "x";
    assert_eq!(canon(&slashes).as_deref(), Ok("/x"));
    let encoded = "/".to_owned() + &"%41".repeat(3000);
    assert_eq!(canon(&encoded), Ok("/".to_owned() + &"A".repeat(3000)));
}

#[test]
fn reasons_name_the_rule() {
    assert_eq!(PathError::AboveRoot.reason(), "path.above_root");
    assert_eq!(PathError::EncodedSlash.to_string(), "path.encoded_slash");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn path_strategy() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"/".to_vec()),
            Just(b".".to_vec()),
            Just(b"..".to_vec()),
            Just(b"%2e".to_vec()),
            Just(b"%2E".to_vec()),
            Just(b"%2f".to_vec()),
            Just(b"%41".to_vec()),
            Just(b"%3b".to_vec()),
            Just(b";".to_vec()),
            Just(b"%".to_vec()),
            Just(b"\\".to_vec()),
            Just(b"a".to_vec()),
            Just(b"bc".to_vec()),
            any::<u8>().prop_map(|b| vec![b]),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|parts| {
            let mut p = b"/".to_vec();
            for part in parts {
                p.extend_from_slice(&part);
            }
            p
        })
    }

    proptest! {
        /// A canonical path is its own canonical form, has no dot segment, no empty inner
        /// segment, no encoded unreserved byte, and never climbs: it is what the backend sees.
        #[test]
        fn canonical_paths_are_fixed_points(path in path_strategy()) {
            let mut out = Vec::new();
            if let Ok(changed) = canonicalize_path(&path, true, &mut out) {
                let canonical = if changed { out.clone() } else { path.clone() };
                prop_assert!(canonical.starts_with(b"/"));
                let mut again = Vec::new();
                prop_assert_eq!(canonicalize_path(&canonical, true, &mut again), Ok(false));
                let inner = &canonical[1..];
                let segs: Vec<&[u8]> = inner.split(|&b| b == b'/').collect();
                for (i, s) in segs.iter().enumerate() {
                    prop_assert!(*s != b"." && *s != b"..");
                    prop_assert!(!s.is_empty() || i + 1 == segs.len());
                }
                prop_assert!(canonical.len() <= path.len());
            }
        }
    }
}
