use super::*;

#[test]
fn spiffe_parts() {
    let id = WorkloadId::parse("spiffe://example.org/ns/prod/sa/web").unwrap();
    assert_eq!(id.trust_domain(), "example.org");
    assert_eq!(id.path(), "/ns/prod/sa/web");
    assert!(id.as_spiffe().is_some());
}

#[test]
fn wimse_parts() {
    let id = WorkloadId::parse("wimse://trust.example.com/service/payment").unwrap();
    assert_eq!(id.trust_domain(), "trust.example.com");
    assert_eq!(id.path(), "/service/payment");
}

#[test]
fn rejects_without_repairing() {
    let e = WorkloadId::parse("wimse://trust.example/service/%70ayment").unwrap_err();
    assert_eq!(e.kind, IdErrorKind::PercentEncoding);
    let e = WorkloadId::parse("spiffe://Example.org/x").unwrap_err();
    assert_eq!(e.kind, IdErrorKind::TrustDomainChar);
}

#[test]
fn trust_domain_forms() {
    assert_eq!(TrustDomain::parse("example.org").unwrap().name(), "example.org");
    assert_eq!(
        TrustDomain::parse("spiffe://example.org").unwrap().id_string(),
        "spiffe://example.org"
    );
    assert_eq!(
        TrustDomain::parse("spiffe://example.org/x").unwrap_err().kind,
        IdErrorKind::WrongForm
    );
}

#[test]
fn error_input_is_bounded() {
    let long = format!("spiffe://{}", "A".repeat(4000));
    let e = WorkloadId::parse(&long).unwrap_err();
    assert_eq!(e.kind, IdErrorKind::TooLong);
    assert!(e.input.len() <= 128);
}
