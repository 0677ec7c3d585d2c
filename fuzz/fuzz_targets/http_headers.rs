//! `extract_credentials` on header lists derived from arbitrary bytes: one header per
//! line (`\n`), the name before the first `:`, the value (raw bytes, not necessarily
//! UTF-8) after it. Both carriage configurations are tried; results must be consistent,
//! and the strict (draft-ietf-wimse-wpt-02) one never hands out an access token or a WPT
//! that is not one token68.
#![no_main]

use lanyard_core::wimse::{
    CarriageConfig, PresentedCredentials, WptCarriage, audience_for, extract_credentials, proof_headers,
};
use libfuzzer_sys::fuzz_target;

fn visible(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn check(c: &PresentedCredentials<'_>, legacy: bool) {
    assert!(visible(c.wit) && visible(c.wpt));
    assert!(!c.wpt.is_empty());
    assert!(!c.wpt.starts_with(' ') && !c.wpt.ends_with(' '));
    assert!(!c.wit.starts_with(' ') && !c.wit.ends_with(' '));
    if let Some(t) = c.access_token {
        assert!(visible(t) && !t.is_empty());
        assert_eq!(c.carriage, WptCarriage::LegacyHeader);
    }
    if let Some(t) = c.txn_token {
        assert!(visible(t));
    }
    if !legacy {
        assert_eq!(c.carriage, WptCarriage::Authorization);
        assert!(c.access_token.is_none(), "wpt-02: no access token beside a WPT");
        let body = c.wpt.trim_end_matches('=');
        assert!(!body.is_empty());
        assert!(body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)), "token68: {:?}", c.wpt);
    }
    // What proof_headers writes, extract_credentials reads back.
    let headers = proof_headers(c.wit, c.wpt, c.carriage);
    let back = extract_credentials(
        headers.iter().map(|(n, v)| (*n, v.as_bytes())),
        &CarriageConfig {
            accept_legacy_header: legacy,
        },
    )
    .expect("proof_headers output is accepted");
    assert_eq!((back.wit, back.wpt, back.carriage), (c.wit, c.wpt, c.carriage));
}

fuzz_target!(|data: &[u8]| {
    let mut names = Vec::new();
    let mut values = Vec::new();
    for line in data.split(|b| *b == b'\n').take(16) {
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        };
        names.push(String::from_utf8_lossy(name).into_owned());
        values.push(value);
    }
    let headers = || names.iter().map(String::as_str).zip(values.iter().copied());

    let strict = extract_credentials(headers(), &CarriageConfig { accept_legacy_header: false });
    let legacy = extract_credentials(headers(), &CarriageConfig { accept_legacy_header: true });
    match &strict {
        Ok(c) => check(c, false),
        Err(e) => {
            let _ = (e.to_string(), e.kind());
        }
    }
    match &legacy {
        Ok(c) => check(c, true),
        Err(e) => {
            let _ = (e.to_string(), e.kind());
        }
    }
    // Turning legacy acceptance on never rejects what the strict form accepts.
    if let Ok(s) = &strict {
        let l = legacy.as_ref().expect("legacy config refused what the strict one accepted");
        assert_eq!((s.wit, s.wpt, s.carriage, s.access_token, s.txn_token),
                   (l.wit, l.wpt, l.carriage, l.access_token, l.txn_token));
    }

    let uri = String::from_utf8_lossy(data);
    let aud = audience_for(&uri);
    assert!(uri.starts_with(aud) && !aud.contains(['?', '#']));
});
