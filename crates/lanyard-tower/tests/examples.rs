//! The three examples (`wpt`, `httpsig`, `mtls`) as tests: each example's `run()` starts
//! orders and billing on loopback, has them call each other, and tries an intruder and a
//! caller without credentials; these tests check what both sides saw and how the
//! unauthorized attempts were refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Each example is a standalone program with its own copy of `examples/support`.
#![allow(clippy::duplicate_mod)]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/httpsig.rs"]
mod httpsig;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/mtls.rs"]
mod mtls;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/wpt.rs"]
mod wpt;

use wpt::support::{BILLING, ORDERS};

/// Checks the two authenticated calls: each service saw the other, in `mode`. (A macro:
/// each example compiles its own copy of `support`, so the report types differ.)
macro_rules! check_calls {
    ($report:expr, $mode:expr) => {{
        let report = &$report;
        let mode: &str = $mode;
        println!("{report}");
        let b2o = &report.billing_to_orders;
        assert_eq!(b2o.status, Some(200), "{b2o:?}");
        assert_eq!(b2o.body["caller"], BILLING, "orders must see billing as its caller");
        assert_eq!(b2o.body["mode"], mode);
        assert_eq!(b2o.body["order"]["id"], 42);
        let o2b = &b2o.body["billing_call"];
        assert_eq!(o2b["status"], 200, "{o2b}");
        assert_eq!(o2b["body"]["caller"], ORDERS, "billing must see orders as its caller");
        assert_eq!(o2b["body"]["mode"], mode);
        assert_eq!(o2b["body"]["credit_limit_cents"], 250_000);
        assert!(report.to_string().contains("REJECTED"));
    }};
}

#[tokio::test]
async fn wpt() {
    let report = wpt::run().await.unwrap();
    check_calls!(report, "wpt");
    let b2o = &report.billing_to_orders;
    assert!(b2o.body["proof_id"].is_string(), "the WPT jti");
    assert_eq!(b2o.signed_by, None);
    assert_eq!(
        (report.intruder.status, report.intruder.kind.as_str()),
        (Some(403), "forbidden")
    );
    assert_eq!(
        (report.anonymous.status, report.anonymous.kind.as_str()),
        (Some(401), "missing_credentials")
    );
    assert_eq!(report.anonymous.challenge.as_deref(), Some("WPT"));
    assert!(
        report.wire.iter().any(|l| l.starts_with("  authorization: WPT ey")),
        "{:?}",
        report.wire
    );
}

#[tokio::test]
async fn http_signature() {
    let report = httpsig::run().await.unwrap();
    check_calls!(report, "http_signature");
    // Both responses were signed by the service that answered, and verified by the caller.
    assert_eq!(report.billing_to_orders.signed_by.as_deref(), Some(ORDERS));
    assert_eq!(report.billing_to_orders.body["billing_call"]["signed_by"], BILLING);
    assert!(
        report.billing_to_orders.body["billing_call"]["body"]["proof_id"].is_string(),
        "the nonce"
    );
    assert_eq!(
        (report.intruder.status, report.intruder.kind.as_str()),
        (Some(403), "forbidden")
    );
    assert_eq!(
        (report.anonymous.status, report.anonymous.kind.as_str()),
        (Some(400), "missing_credentials")
    );
    assert!(
        report.wire.iter().any(|l| l.starts_with("  signature-input: wimse=(")),
        "{:?}",
        report.wire
    );
}

#[tokio::test]
async fn mtls() {
    let (report, curl) = mtls::run().await.unwrap();
    check_calls!(report, "mtls");
    assert!(report.billing_to_orders.body["proof_id"].is_null());

    // Neither refusal gets as far as HTTP: the server refuses the handshake, with the
    // alert rustls sends for an unauthorized client SVID and for a missing one.
    for (attempt, alert) in [
        (&report.intruder, "HandshakeFailure"),
        (&report.anonymous, "CertificateRequired"),
    ] {
        assert_eq!(attempt.status, None, "{attempt:?}");
        assert_eq!(attempt.kind, "tls_handshake_refused");
        assert!(attempt.detail.contains(alert), "{}", attempt.detail);
    }

    let have_curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match (&curl, have_curl) {
        (Some(curl), true) => {
            let with = &curl.with_cert;
            assert_eq!(with.status.code(), Some(0), "{}", String::from_utf8_lossy(&with.stderr));
            let body: serde_json::Value = serde_json::from_slice(&with.stdout).unwrap();
            assert_eq!(body["caller"], BILLING);
            assert_eq!(body["mode"], "mtls");
            assert_eq!(body["billing_call"]["body"]["caller"], ORDERS);
            assert_ne!(curl.without_cert.status.code(), Some(0));
            assert!(curl.without_cert.stdout.is_empty());
        }
        (None, false) => eprintln!("SKIP: curl is not installed"),
        (curl, have) => panic!("curl installed: {have}, ran: {}", curl.is_some()),
    }
}
