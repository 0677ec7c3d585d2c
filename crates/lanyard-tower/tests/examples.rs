//! The three examples (`wpt`, `httpsig`, `mtls`) as tests: each runs the shared demo in
//! `examples/common/mod.rs` — orders and billing on loopback calling each other — and
//! checks what both sides saw and how the unauthorized attempts were refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/common/mod.rs"]
pub mod common;

use common::{BILLING, DemoReport, Mode, ORDERS, Refusal, run_demo};

async fn run(mode: Mode) -> DemoReport {
    let report = run_demo(mode).await.unwrap();
    println!("{report}");
    report.verify().unwrap();
    let expected = mode.auth_mode().as_str();

    let b2o = &report.billing_to_orders;
    assert_eq!((b2o.from, b2o.to, b2o.status), ("billing", "orders", 200));
    assert_eq!(b2o.caller_id, BILLING, "orders must see billing as its caller");
    assert_eq!(b2o.caller_mode, expected);
    assert!(b2o.url.ends_with("/orders/42"));
    assert_eq!(report.order_body["order"]["id"], 42);

    let o2b = &report.orders_to_billing;
    assert_eq!((o2b.from, o2b.to, o2b.status), ("orders", "billing", 200));
    assert_eq!(o2b.caller_id, ORDERS, "billing must see orders as its caller");
    assert_eq!(o2b.caller_mode, expected);
    assert!(o2b.url.ends_with("/billing/limits"));
    assert_eq!(report.order_body["billing_call"]["body"]["credit_limit_cents"], 250_000);

    assert_eq!(report.anonymous.outcome.status(), mode.unauthenticated_status());
    assert!(report.to_string().contains("REJECTED"));
    report
}

#[tokio::test]
async fn wpt() {
    let report = run(Mode::Wpt).await;
    assert!(report.billing_to_orders.proof_id.is_some(), "the WPT jti");
    assert_eq!(report.billing_to_orders.response_signed_by, None);

    assert_eq!(report.intruder.outcome.status(), Some(403));
    assert_eq!(report.intruder.outcome.kind(), "forbidden");
    assert_eq!(report.anonymous.outcome.status(), Some(401));
    assert_eq!(report.anonymous.outcome.kind(), "missing_credentials");
    let Refusal::Http { challenge, .. } = &report.anonymous.outcome else {
        panic!("{:?}", report.anonymous.outcome)
    };
    assert_eq!(challenge.as_deref(), Some("WPT"));
    assert!(report.curl.is_none());
}

#[tokio::test]
async fn http_signature() {
    let report = run(Mode::HttpSignature).await;
    // Both responses were signed by the service that answered, and verified by the caller.
    assert_eq!(report.billing_to_orders.response_signed_by.as_deref(), Some(ORDERS));
    assert_eq!(report.orders_to_billing.response_signed_by.as_deref(), Some(BILLING));
    assert!(report.orders_to_billing.proof_id.is_some(), "the signature nonce");

    assert_eq!(report.intruder.outcome.status(), Some(403));
    assert_eq!(report.intruder.outcome.kind(), "forbidden");
    assert_eq!(report.anonymous.outcome.status(), Some(400));
    assert_eq!(report.anonymous.outcome.kind(), "missing_credentials");
}

#[tokio::test]
async fn mtls() {
    let report = run(Mode::Mtls).await;
    assert!(report.orders_url.starts_with("https://127.0.0.1:"));
    assert_eq!(report.billing_to_orders.proof_id, None);

    // Neither refusal gets as far as HTTP: the server refuses the handshake, with the
    // alert rustls sends for an unauthorized client SVID and for a missing one.
    for (attempt, alert) in [
        (&report.intruder, "HandshakeFailure"),
        (&report.anonymous, "CertificateRequired"),
    ] {
        assert_eq!(attempt.outcome.status(), None, "{attempt:?}");
        assert_eq!(attempt.outcome.kind(), "tls_handshake_refused");
        let Refusal::Tls { error } = &attempt.outcome else {
            panic!("{attempt:?}")
        };
        assert!(error.contains(alert), "{error}");
    }

    let have_curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match (&report.curl, have_curl) {
        (Some(curl), true) => {
            assert_eq!(curl.with_cert.exit_code, Some(0), "{}", curl.with_cert.stderr);
            let body: serde_json::Value = serde_json::from_str(&curl.with_cert.stdout).unwrap();
            assert_eq!(body["caller"], BILLING);
            assert_eq!(body["mode"], "mtls");
            assert_eq!(body["billing_call"]["body"]["caller"], ORDERS);
            assert_ne!(curl.without_cert.exit_code, Some(0));
            assert!(curl.without_cert.stdout.is_empty(), "{}", curl.without_cert.stdout);
        }
        (None, false) => eprintln!("SKIP: curl is not installed"),
        (curl, have) => panic!("curl installed: {have}, report: {curl:?}"),
    }
}
