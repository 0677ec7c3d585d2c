use super::base::Message;
use super::profile::{check_coverage, check_params, locate};
use super::*;
use crate::time::UnixTime;

// draft-ietf-wimse-http-signature-06 §3.6 (includes/sigs-request.txt), header values verbatim.
const WIT_A: &str = "eyJhbGciOiJFZERTQSIsImtpZCI6Imlzc3Vlci1rZXkiLCJ0eXAiOiJ3aXQrand0In0.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImtpZCI6InN2Yy1hLWtleSIsImt0eSI6Ik9LUCIsIngiOiJaamxWVDRDT3NDa1FPOUhJbzZ0RFdBWGF5UTBNeW1vRlVLSlJJUTdTOFI4In19LCJleHAiOjE3ODUxNTYwOTcsImlhdCI6MTc4NTE1NTc5NywiaXNzIjoiaHR0cHM6Ly9leGFtcGxlLmNvbS9pc3N1ZXIiLCJqdGkiOiJ3aXQtMTc4NTE1NTc5NzIxNjU0NTcxOSIsInN1YiI6IndpbXNlOi8vZXhhbXBsZS5jb20vc3ZjQSJ9.BqJfcsbrYlS9GSQ7NpFBBVz4CeszShqleIyr2sSnd0Ic6l2HXX27giZcdAOGnXjtv_7h-9vV16GZbVcrQt6hCg";
const INPUT_A: &str = r#"wimse=("@method" "@request-target" "workload-identity-token");created=1785155797;expires=1785156097;nonce="abcd1111";tag="wimse-workload-to-workload";wimse-aud="https://svcb.example.com/gimme-ice-cream";wimse-sign-response"#;

fn request<'a>(headers: Vec<(&'a str, &'a [u8])>) -> RequestParts<'a> {
    RequestParts {
        method: "GET",
        target: "/gimme-ice-cream?flavor=vanilla",
        authority: Some("svcb.example.com"),
        scheme: Some("https"),
        headers,
    }
}

#[test]
fn reproduces_the_draft_request_signature_base() {
    let req = request(vec![
        ("Host", b"svcb.example.com"),
        (
            "Signature",
            b"wimse=:zSK+kx5EnoZct9FZ6LMYzfx0mk32oI/hHpB7y4rgHxkRDcAA72yBW5xgzA03nKviXLjL7nphq840Uwznp6IKAw==:",
        ),
        ("Signature-Input", INPUT_A.as_bytes()),
        ("Workload-Identity-Token", WIT_A.as_bytes()),
    ]);
    let expected = format!(
        "\"@method\": GET\n\"@request-target\": /gimme-ice-cream?flavor=vanilla\n\"workload-identity-token\": {WIT_A}\n\"@signature-params\": {}",
        INPUT_A.trim_start_matches("wimse=")
    );
    assert_eq!(request_signature_base(&req).unwrap(), expected);
}

#[test]
fn path_and_query() {
    let r = RequestParts {
        target: "/a/b?x=1&y=2",
        ..RequestParts::default()
    };
    assert_eq!((r.path(), r.query(), r.has_query()), ("/a/b", "?x=1&y=2", true));
    let r = RequestParts {
        target: "",
        ..RequestParts::default()
    };
    assert_eq!((r.path(), r.query(), r.has_query()), ("/", "?", false));
}

#[test]
fn selects_by_tag_and_rejects_two() {
    let other = r#"sig1=("@method");created=1;tag="something-else""#;
    let two = format!("{INPUT_A}, {}", INPUT_A.replacen("wimse=", "second=", 1));
    let req = request(vec![
        ("Signature-Input", two.as_bytes()),
        ("Signature", b"wimse=:AA==:"),
    ]);
    assert_eq!(
        locate(&req.headers).err().map(|e| e.kind()),
        Some("signature_duplicate")
    );
    let req = request(vec![
        ("Signature-Input", other.as_bytes()),
        ("Signature", b"sig1=:AA==:"),
    ]);
    assert_eq!(locate(&req.headers).err().map(|e| e.kind()), Some("signature_missing"));
    // A WIMSE signature under another label is still found by its tag.
    let relabelled = INPUT_A.replacen("wimse=", "mine=", 1);
    let req = request(vec![
        ("Signature-Input", relabelled.as_bytes()),
        ("Signature", b"mine=:AA==:"),
    ]);
    assert_eq!(locate(&req.headers).unwrap().label, "mine");
}

#[test]
fn parameter_rules() {
    let policy = HttpSigPolicy::default();
    let now = UnixTime(1_785_155_800);
    let check = |input: &str| {
        let req = request(vec![
            ("Signature-Input", input.as_bytes()),
            ("Signature", b"wimse=:AA==:"),
        ]);
        let found = locate(&req.headers)?;
        check_params(&found, true, &policy, now)
    };
    assert!(check(INPUT_A).is_ok());
    let with_keyid = INPUT_A.replace(";nonce=", ";keyid=\"k\";nonce=");
    assert_eq!(check(&with_keyid).unwrap_err().kind(), "signature_params");
    let with_alg = INPUT_A.replace(";nonce=", ";alg=\"ed25519\";nonce=");
    assert_eq!(check(&with_alg).unwrap_err().kind(), "signature_params");
    let no_aud = INPUT_A.replace(r#";wimse-aud="https://svcb.example.com/gimme-ice-cream""#, "");
    assert_eq!(check(&no_aud).unwrap_err().kind(), "signature_params");
    let no_nonce = INPUT_A.replace(r#";nonce="abcd1111""#, "");
    assert_eq!(check(&no_nonce).unwrap_err().kind(), "signature_params");
    let long = INPUT_A.replace("expires=1785156097", "expires=1785199999");
    assert_eq!(check(&long).unwrap_err().kind(), "lifetime_too_long");
    // The maximum is 300 s from now, leeway not added: 301 s is too long.
    let at_max = INPUT_A.replace("expires=1785156097", "expires=1785156100");
    assert!(check(&at_max).is_ok());
    let over = INPUT_A.replace("expires=1785156097", "expires=1785156101");
    assert_eq!(check(&over).unwrap_err().kind(), "lifetime_too_long");
    let late = {
        let req = request(vec![
            ("Signature-Input", INPUT_A.as_bytes()),
            ("Signature", b"wimse=:AA==:"),
        ]);
        let found = locate(&req.headers).unwrap();
        check_params(&found, true, &policy, UnixTime(1_785_156_097 + 61))
    };
    assert_eq!(late.unwrap_err().kind(), "expired");
}

#[test]
fn coverage_rules() {
    let policy = HttpSigPolicy::default();
    let compat = HttpSigPolicy {
        accept_request_target: true,
        ..policy
    };
    let list_of = |input: &str| {
        let req = request(vec![
            ("Signature-Input", input.as_bytes()),
            ("Signature", b"wimse=:AA==:"),
        ]);
        locate(&req.headers).unwrap().list
    };
    let kind = |msg: Message<'_, '_>, input: &str, policy: &HttpSigPolicy| {
        check_coverage(msg, &list_of(input), policy).err().map(|e| e.kind())
    };
    let path_query = INPUT_A.replace("\"@request-target\"", "\"@path\" \"@query\"");
    let path_only = INPUT_A.replace("\"@request-target\"", "\"@path\"");
    let plain = request(vec![("Workload-Identity-Token", WIT_A.as_bytes())]);
    let no_query = RequestParts {
        target: "/gimme-ice-cream",
        ..plain.clone()
    };
    // -07: @path and @query, @query even when the request has none.
    assert_eq!(kind(Message::Request(&plain), &path_query, &policy), None);
    assert_eq!(
        check_coverage(Message::Request(&plain), &list_of(&path_query), &policy).unwrap(),
        TargetComponents::PathAndQuery
    );
    assert_eq!(kind(Message::Request(&no_query), &path_query, &policy), None);
    assert_eq!(
        kind(Message::Request(&plain), &path_only, &policy),
        Some("signature_components")
    );
    assert_eq!(
        kind(Message::Request(&no_query), &path_only, &policy),
        Some("signature_components")
    );
    // -06 @request-target only behind the switch, which also keeps -06's optional @query.
    assert_eq!(
        kind(Message::Request(&plain), INPUT_A, &policy),
        Some("signature_legacy_target")
    );
    assert_eq!(
        check_coverage(Message::Request(&plain), &list_of(INPUT_A), &compat).unwrap(),
        TargetComponents::RequestTarget
    );
    assert_eq!(kind(Message::Request(&no_query), &path_only, &compat), None);
    assert_eq!(
        kind(Message::Request(&plain), &path_only, &compat),
        Some("signature_components")
    );
    // content-type is present but not covered
    let with_ct = request(vec![
        ("Content-Type", b"text/plain"),
        ("Workload-Identity-Token", WIT_A.as_bytes()),
    ]);
    assert_eq!(
        kind(Message::Request(&with_ct), &path_query, &policy),
        Some("signature_components")
    );
    // unsupported component parameters are refused
    let sf = path_query.replace("\"workload-identity-token\"", "\"workload-identity-token\";sf");
    assert_eq!(
        kind(Message::Request(&plain), &sf, &policy),
        Some("signature_components")
    );
}
