//! Runs `examples/agent_for_user.rs` (issue 13, item 6) and checks what each hop carried:
//! alice's token of the external identity provider maps to her identifier in example.org,
//! which stays the subject throughout (a token signed by another key is refused), the
//! acting chain grows agent → tool, the transaction reaches the tool, and partner.org's
//! token keeps `sub` and `act`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/agent_for_user.rs"]
mod example;

use serde_json::{Value, json};

const AGENT: &str = "spiffe://example.org/agent";
const TOOL: &str = "spiffe://example.org/tool";
/// alice as the home server names her: the mapping rule of the trusted provider.
const ALICE: &str = "wimse://example.org/users/alice";

/// The `sub`s of an `act` claim, outermost first.
fn chain(act: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    let mut at = act;
    while let Some(sub) = at.get("sub").and_then(Value::as_str) {
        out.push(sub);
        at = &at["act"];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_acts_for_alice_across_two_trust_domains() {
    let t = example::run().await.unwrap();

    // 1. The user token: alice at the external identity provider, for the home server,
    // no actor yet.
    let u = &t.user_token.claims;
    assert_eq!(t.user_token.typ.as_deref(), Some("JWT"));
    assert_eq!(
        (u["iss"].as_str(), u["sub"].as_str(), u["aud"].as_str()),
        (
            Some("https://idp.example.com"),
            Some("alice"),
            Some("https://lanyard.example.org")
        )
    );
    assert!(u["iat"].as_u64() < u["exp"].as_u64());
    assert!(u.get("act").is_none());

    // 2'. The same exchange with a token signed by another key (same iss, same kid).
    let (status, refusal) = &t.forged_refused;
    assert_eq!(*status, 400, "{refusal}");
    assert_eq!(refusal["error"], "invalid_request", "{refusal}");
    assert!(
        refusal["error_description"].as_str().unwrap().contains("signature"),
        "{refusal}"
    );
    assert!(refusal.get("access_token").is_none());

    // 2. Delegation: alice by her mapped identifier, the agent acts, `calendar.read`, for
    // the tools, never outliving the provider's token.
    let d = &t.delegated.claims;
    assert_eq!(t.delegated.typ.as_deref(), Some("at+jwt"));
    assert_eq!(
        (d["sub"].as_str(), d["client_id"].as_str()),
        (Some(ALICE), Some("agent"))
    );
    assert_eq!(chain(&d["act"]), [AGENT]);
    assert_eq!(d["scope"], "calendar.read");
    assert!(d["exp"].as_u64() <= t.user_token.claims["exp"].as_u64());

    // 3. The Txn-Token: alice, for the trust domain, requested by the agent, with context.
    let x = &t.txn_token.claims;
    assert_eq!(t.txn_token.typ.as_deref(), Some("txntoken+jwt"));
    assert_eq!(
        (x["sub"].as_str(), x["aud"].as_str()),
        (Some(ALICE), Some("example.org"))
    );
    assert_eq!(x["req_wl"], AGENT);
    assert_eq!(chain(&x["act"]), [AGENT]);
    assert_eq!(x["rctx"]["req_ip"], "192.0.2.7");
    let txn = x["txn"].as_str().unwrap();

    // 5. The tool saw the calling workload, the user, the transaction and the chain.
    let saw = &t.tool_saw;
    assert_eq!(saw["caller"], AGENT);
    assert_eq!(saw["user"], ALICE);
    assert_eq!(saw["txn"], txn);
    assert_eq!(saw["rctx"], json!({"req_ip": "192.0.2.7", "channel": "chat"}));
    assert_eq!(saw["tctx"]["action"], "book_room");
    assert_eq!(chain(&saw["act"]), [AGENT]);
    // ...and answered the agent without handing over partner.org's token.
    assert_eq!(t.tool_answer["for"], ALICE);
    assert_eq!(t.tool_answer["txn"], txn);
    assert!(t.tool_answer.get("partner_token").is_none());

    // 6a. The grant for partner.org: alice, the tool acting for the agent's chain.
    let g = &t.grant.claims;
    assert_eq!(t.grant.typ.as_deref(), Some("authorization-grant+jwt"));
    assert_eq!(
        (g["sub"].as_str(), g["aud"].as_str()),
        (Some(ALICE), Some("https://as.partner.org"))
    );
    assert_eq!(chain(&g["act"]), [TOOL, AGENT]);

    // 6b. partner.org's own token keeps sub and act.
    let p = &t.partner_token.claims;
    assert_eq!(t.partner_token.typ.as_deref(), Some("at+jwt"));
    assert_eq!(p["iss"], "https://as.partner.org");
    assert_eq!(
        (p["sub"].as_str(), p["client_id"].as_str()),
        (Some(ALICE), Some("example-tool"))
    );
    assert_eq!(p["aud"], "https://rooms.partner.org");
    assert_eq!(chain(&p["act"]), [TOOL, AGENT]);
    assert_eq!(p["scope"], "calendar.read");
}
