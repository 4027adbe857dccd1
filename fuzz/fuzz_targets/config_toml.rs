//! The TOML config loader (`parse_raw` then validation), with an injected environment so no
//! name is resolved and no variable of the fuzzing process is read. Properties: no panic; a
//! refused file reports at least one error, printable; an accepted file parses as a raw config
//! and summarises; and the same text gives the same verdict twice.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use torii_engine::config::{load_str_with_env, parse_raw, MapEnv};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = MapEnv::new([("TORII_FUZZ_SECRET", "0123456789abcdef0123456789abcdef")])
        .with_host("backend.test", std::net::IpAddr::from([127, 0, 0, 1]));
    // Relative key and certificate paths resolve in a directory that does not exist.
    let base = Path::new("/nonexistent-torii-fuzz");
    let first = load_str_with_env(text, base, &env);
    match &first {
        Ok(cfg) => {
            let _ = cfg.summary();
            assert!(parse_raw(text).is_ok(), "validated a file that does not parse");
        }
        Err(errors) => {
            assert!(!errors.errors().is_empty(), "refused without an error");
            let shown = errors.to_string();
            assert!(!shown.is_empty());
        }
    }
    let second = load_str_with_env(text, base, &env);
    assert_eq!(first.is_ok(), second.is_ok(), "loading is not deterministic");
});
