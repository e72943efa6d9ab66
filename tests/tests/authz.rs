//! Who may do what: every role (customer alice, customer bob, batch, ops,
//! anonymous) × every endpoint of the API table × their own and someone
//! else's resource, asserting the exact status; and token attacks, which
//! must all be 401 and change nothing.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use system_tests::*;

const BATCH_EUR: &str = "ba7c0000-0000-4000-8000-000000000001";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Alice,
    Bob,
    Batch,
    Ops,
    Anonymous,
}

const EVERYONE: [Who; 5] = [Who::Alice, Who::Bob, Who::Batch, Who::Ops, Who::Anonymous];

impl Who {
    fn index(self) -> usize {
        EVERYONE.iter().position(|w| *w == self).unwrap_or(0)
    }

    /// An account of theirs (ops owns none: alice's, which ops may read).
    fn own_account(self) -> &'static str {
        match self {
            Who::Bob => BOB_EUR,
            Who::Batch => BATCH_EUR,
            _ => ALICE_EUR,
        }
    }

    /// An account of someone else's.
    fn other_account(self) -> &'static str {
        match self {
            Who::Alice => BOB_EUR,
            Who::Bob | Who::Batch => ALICE_EUR,
            _ => BOB_EUR,
        }
    }

    /// Where their test payments go (never their own account).
    fn payee(self) -> &'static str {
        match self {
            Who::Bob => ALICE_EUR,
            _ => BOB_EUR,
        }
    }

    fn username(self) -> &'static str {
        match self {
            Who::Alice | Who::Anonymous => "alice",
            Who::Bob => "bob",
            Who::Batch => "batch",
            Who::Ops => "ops",
        }
    }
}

struct Cell {
    who: Who,
    what: String,
    method: reqwest::Method,
    path: String,
    /// Content type and body.
    body: Option<(&'static str, String)>,
    expected: u16,
}

struct Matrix {
    cells: Vec<Cell>,
    keys: usize,
}

impl Matrix {
    /// One cell per caller, the expected statuses in `EVERYONE`'s order.
    fn row(
        &mut self,
        what: &str,
        method: reqwest::Method,
        request: impl Fn(Who) -> (String, Option<(&'static str, String)>),
        expected: [u16; 5],
    ) {
        for who in EVERYONE {
            let (path, body) = request(who);
            self.cells.push(Cell {
                who,
                what: what.to_owned(),
                method: method.clone(),
                path,
                body,
                expected: expected[who.index()],
            });
        }
    }

    fn key(&mut self) -> String {
        self.keys += 1;
        format!("authz-{}", self.keys)
    }
}

fn transfer(from: &str, to: &str) -> Option<(&'static str, String)> {
    Some((
        "application/json",
        json!({"from_account": from, "to_account": to, "amount": "1.00", "currency": "EUR"})
            .to_string(),
    ))
}

fn csv(from: &str, to: &str) -> Option<(&'static str, String)> {
    Some((
        "text/csv",
        format!("from_account,to_account,amount,currency\n{from},{to},1.00,EUR\n"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_role_on_every_endpoint_gets_exactly_its_status() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let bob = stack.login("bob").await;
    let batch = stack.login("batch").await;
    let ops = stack.login("ops").await;
    let token = |who: Who| match who {
        Who::Alice => alice.clone(),
        Who::Bob => bob.clone(),
        Who::Batch => batch.clone(),
        Who::Ops => ops.clone(),
        Who::Anonymous => String::new(),
    };

    // Resources: a transfer alice → bob, one batch → bob, a batch of alice's.
    let (_, _, t) = stack
        .transfer(&alice, "setup-ab", &json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "1.00", "currency": "EUR"}))
        .await;
    let alice_to_bob = t["id"].as_str().unwrap().to_owned();
    let (_, _, t) = stack
        .transfer(&batch, "setup-bb", &json!({"from_account": BATCH_EUR, "to_account": BOB_EUR, "amount": "1.00", "currency": "EUR"}))
        .await;
    let batch_to_bob = t["id"].as_str().unwrap().to_owned();
    stack.final_state(&alice, &alice_to_bob).await;
    stack.final_state(&batch, &batch_to_bob).await;
    let r = stack
        .http
        .post(format!("{}/v1/batches", stack.api))
        .bearer_auth(&alice)
        .header("Idempotency-Key", "setup-batch")
        .header("content-type", "text/csv")
        .body(format!(
            "from_account,to_account,amount,currency\n{ALICE_EUR},{BOB_EUR},1.00,EUR\n"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let alice_batch = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    use reqwest::Method as M;
    let mut m = Matrix {
        cells: Vec::new(),
        keys: 0,
    };
    //                                                     alice bob batch ops anon
    m.row("login with own credentials", M::POST, |w| {
        let body = json!({"username": w.username(), "password": format!("{}-dev-password", w.username())});
        ("/v1/auth/login".into(), Some(("application/json", body.to_string())))
    }, [200, 200, 200, 200, 200]);
    m.row(
        "login as bob with own password",
        M::POST,
        |w| {
            let body =
                json!({"username": "bob", "password": format!("{}-dev-password", w.username())});
            (
                "/v1/auth/login".into(),
                Some(("application/json", body.to_string())),
            )
        },
        [401, 200, 401, 401, 401],
    );
    m.row(
        "me",
        M::GET,
        |_| ("/v1/me".into(), None),
        [200, 200, 200, 200, 401],
    );
    m.row(
        "config",
        M::GET,
        |_| ("/v1/config".into(), None),
        [200, 200, 200, 200, 200],
    );
    m.row(
        "my accounts",
        M::GET,
        |_| ("/v1/accounts".into(), None),
        [200, 200, 200, 200, 401],
    );
    m.row(
        "own account",
        M::GET,
        |w| (format!("/v1/accounts/{}", w.own_account()), None),
        [200, 200, 200, 200, 401],
    );
    m.row(
        "other's account",
        M::GET,
        |w| (format!("/v1/accounts/{}", w.other_account()), None),
        [404, 404, 404, 200, 401],
    );
    m.row(
        "own entries",
        M::GET,
        |w| (format!("/v1/accounts/{}/entries", w.own_account()), None),
        [200, 200, 200, 200, 401],
    );
    m.row(
        "other's entries",
        M::GET,
        |w| (format!("/v1/accounts/{}/entries", w.other_account()), None),
        [404, 404, 404, 200, 401],
    );
    let mut keyed = Vec::new();
    let start = m.cells.len();
    m.row(
        "transfer from own account",
        M::POST,
        |w| ("/v1/transfers".into(), transfer(w.own_account(), w.payee())),
        [202, 202, 202, 403, 401],
    );
    m.row(
        "transfer from other's account",
        M::POST,
        |w| {
            (
                "/v1/transfers".into(),
                transfer(w.other_account(), w.own_account()),
            )
        },
        [403, 403, 403, 403, 401],
    );
    m.row(
        "transfer alice → bob (sender, payee)",
        M::GET,
        |_| (format!("/v1/transfers/{alice_to_bob}"), None),
        [200, 200, 404, 200, 401],
    );
    m.row(
        "transfer batch → bob",
        M::GET,
        |_| (format!("/v1/transfers/{batch_to_bob}"), None),
        [404, 200, 200, 200, 401],
    );
    m.row(
        "my transfers",
        M::GET,
        |_| ("/v1/transfers?limit=5".into(), None),
        [200, 200, 200, 200, 401],
    );
    m.row(
        "batch from own account",
        M::POST,
        |w| ("/v1/batches".into(), csv(w.own_account(), w.payee())),
        [202, 202, 202, 403, 401],
    );
    m.row(
        "batch from other's account",
        M::POST,
        |w| {
            (
                "/v1/batches".into(),
                csv(w.other_account(), w.own_account()),
            )
        },
        [422, 422, 422, 403, 401],
    );
    keyed.extend(start..m.cells.len());
    m.row(
        "alice's batch",
        M::GET,
        |_| (format!("/v1/batches/{alice_batch}"), None),
        [200, 404, 404, 200, 401],
    );
    m.row(
        "alice's batch payments",
        M::GET,
        |_| (format!("/v1/batches/{alice_batch}/payments"), None),
        [200, 404, 404, 200, 401],
    );
    m.row(
        "ops: recent transfers",
        M::GET,
        |_| ("/v1/ops/transfers?limit=5".into(), None),
        [403, 403, 403, 200, 401],
    );
    m.row(
        "ops: timeline",
        M::GET,
        |_| (format!("/v1/ops/transfers/{alice_to_bob}/timeline"), None),
        [403, 403, 403, 200, 401],
    );
    m.row(
        "ops: stats",
        M::GET,
        |_| ("/v1/ops/stats?window_seconds=60".into(), None),
        [403, 403, 403, 200, 401],
    );
    m.row(
        "ops: audit trail",
        M::GET,
        |_| ("/v1/ops/audit?limit=5".into(), None),
        [403, 403, 403, 200, 401],
    );
    m.row(
        "refresh with an unknown refresh token",
        M::POST,
        |_| {
            let body = json!({"refresh_token": "bm90LWEtcmVmcmVzaC10b2tlbi1hdC1hbGwtMDEyMzQ1Njc"});
            (
                "/v1/auth/refresh".into(),
                Some(("application/json", body.to_string())),
            )
        },
        [401, 401, 401, 401, 401],
    );
    m.row(
        "logout (an unknown refresh token: nothing to revoke)",
        M::POST,
        |_| {
            let body = json!({"refresh_token": "bm90LWEtcmVmcmVzaC10b2tlbi1hdC1hbGwtMDEyMzQ1Njc"});
            (
                "/v1/auth/logout".into(),
                Some(("application/json", body.to_string())),
            )
        },
        [204, 204, 204, 204, 401],
    );
    m.row(
        "password change with a too short new password (nothing changes)",
        M::POST,
        |_| {
            let body = json!({"current_password": "whatever-it-is", "new_password": "short"});
            (
                "/v1/auth/password".into(),
                Some(("application/json", body.to_string())),
            )
        },
        [422, 422, 422, 422, 401],
    );
    m.row(
        "the OpenAPI document",
        M::GET,
        |_| ("/openapi.json".into(), None),
        [200, 200, 200, 200, 200],
    );
    m.row(
        "healthz",
        M::GET,
        |_| ("/healthz".into(), None),
        [200, 200, 200, 200, 200],
    );
    m.row(
        "readyz",
        M::GET,
        |_| ("/readyz".into(), None),
        [200, 200, 200, 200, 200],
    );
    m.row(
        "metrics",
        M::GET,
        |_| ("/metrics".into(), None),
        [200, 200, 200, 200, 200],
    );

    let mut wrong = Vec::new();
    let keys: Vec<String> = (0..m.cells.len()).map(|_| m.key()).collect();
    for (i, cell) in m.cells.iter().enumerate() {
        let mut req = stack
            .http
            .request(cell.method.clone(), format!("{}{}", stack.api, cell.path));
        let t = token(cell.who);
        if !t.is_empty() {
            req = req.bearer_auth(t);
        }
        if keyed.contains(&i) {
            req = req.header("Idempotency-Key", &keys[i]);
        }
        if let Some((content_type, body)) = &cell.body {
            req = req.header("content-type", *content_type).body(body.clone());
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        if status >= 400 {
            assert_eq!(
                r.headers()["content-type"],
                "application/problem+json",
                "{:?} {}",
                cell.who,
                cell.what
            );
        }
        if status != cell.expected {
            let body = r.text().await.unwrap_or_default();
            wrong.push(format!(
                "{:?} {} ({} {}): expected {}, got {status} {body}",
                cell.who, cell.what, cell.method, cell.path, cell.expected
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // The notifier's WebSocket: every role, never anonymous.
    for who in [Who::Alice, Who::Bob, Who::Batch, Who::Ops] {
        let mut ws = stack.connect_ws(&token(who), None).await;
        let ready = ws.next(Duration::from_secs(5)).await.expect("ready");
        assert_eq!(ready["type"], "ready", "{who:?}");
        ws.close().await;
    }
    let r = stack
        .http
        .get(stack.ws.replace("ws://", "http://"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "anonymous WebSocket");
    assert_invariants(&stack).await;
    stack.stop().await;
}

async fn assert_invariants(stack: &Stack) {
    let report = ledger::invariants::check(&stack.db.pool).await.unwrap();
    assert!(report.holds(), "{:?}", report.violations());
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header and claims, HMAC-signed with `secret` by the
/// header's `alg` (HS256 unless HS384/HS512).
fn signed(header: Value, claims: &Value, secret: &[u8]) -> String {
    let head = b64(header.to_string().as_bytes());
    let body = b64(claims.to_string().as_bytes());
    let alg = match header["alg"].as_str() {
        Some("HS512") => jsonwebtoken::Algorithm::HS512,
        Some("HS384") => jsonwebtoken::Algorithm::HS384,
        _ => jsonwebtoken::Algorithm::HS256,
    };
    let key = jsonwebtoken::EncodingKey::from_secret(secret).unwrap();
    let signature =
        jsonwebtoken::crypto::sign(format!("{head}.{body}").as_bytes(), &key, alg).unwrap();
    format!("{head}.{body}.{signature}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_attacks_are_refused_and_change_nothing() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let (_, me) = stack.get(&alice, "/v1/me").await;
    let alice_id = me["id"].as_str().unwrap().to_owned();
    let now = shared::auth::unix_now();
    let claims = |changes: Value| {
        let mut c = json!({
            "iss": shared::auth::TOKEN_ISSUER, "aud": shared::auth::TOKEN_AUDIENCE,
            "sub": alice_id, "role": "customer", "exp": now + 600, "nbf": now - 10,
            "iat": now - 10, "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let (Some(c), Some(changes)) = (c.as_object_mut(), changes.as_object()) {
            for (k, v) in changes {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    };
    let hs256 = json!({"alg": "HS256", "typ": "JWT", "kid": "k1"});
    let secret = JWT_SECRET.as_bytes();
    // The control: a token we make this way is accepted.
    let good = signed(hs256.clone(), &claims(json!({})), secret);
    assert_eq!(stack.get(&good, "/v1/me").await.0, 200, "control token");

    let mut parts: Vec<String> = alice.split('.').map(str::to_owned).collect();
    parts[1] = b64(claims(json!({"role": "ops"})).to_string().as_bytes());
    let escalated = parts.join(".");
    let attacks: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(json!({"alg": "none", "typ": "JWT", "kid": "k1"})
                    .to_string()
                    .as_bytes()),
                b64(claims(json!({})).to_string().as_bytes())
            ),
        ),
        (
            "alg HS512 with the right key",
            signed(
                json!({"alg": "HS512", "typ": "JWT", "kid": "k1"}),
                &claims(json!({})),
                secret,
            ),
        ),
        (
            "wrong key",
            signed(
                hs256.clone(),
                &claims(json!({})),
                b"another-secret-another-secret-0123456789",
            ),
        ),
        (
            "unknown kid",
            signed(
                json!({"alg": "HS256", "typ": "JWT", "kid": "k9"}),
                &claims(json!({})),
                secret,
            ),
        ),
        (
            "no kid",
            signed(
                json!({"alg": "HS256", "typ": "JWT"}),
                &claims(json!({})),
                secret,
            ),
        ),
        (
            "wrong audience",
            signed(
                hs256.clone(),
                &claims(json!({"aud": "another-api"})),
                secret,
            ),
        ),
        (
            "wrong issuer",
            signed(
                hs256.clone(),
                &claims(json!({"iss": "someone-else"})),
                secret,
            ),
        ),
        (
            "expired",
            signed(
                hs256.clone(),
                &claims(json!({"exp": now - 60, "nbf": now - 1000})),
                secret,
            ),
        ),
        (
            "not yet valid",
            signed(
                hs256.clone(),
                &claims(json!({"nbf": now + 3600, "exp": now + 7200})),
                secret,
            ),
        ),
        ("no exp", {
            let mut c = claims(json!({}));
            c.as_object_mut().map(|o| o.remove("exp"));
            signed(hs256.clone(), &c, secret)
        }),
        (
            "unknown role",
            signed(hs256.clone(), &claims(json!({"role": "admin"})), secret),
        ),
        ("tampered payload (role ops)", escalated),
        ("truncated signature", alice[..alice.len() - 4].to_owned()),
    ];
    let published = stack.nats.transfers_published().await;
    let count = |table: &'static str| {
        let pool = stack.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table}"
            )))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (transfers, batches) = (count("transfers").await, count("batches").await);

    let mut wrong = Vec::new();
    for (i, (what, token)) in attacks.iter().enumerate() {
        for (method, path, body) in [
            ("GET", "/v1/me".to_owned(), None),
            ("GET", format!("/v1/accounts/{ALICE_EUR}"), None),
            ("GET", "/v1/ops/stats".to_owned(), None),
            (
                "POST",
                "/v1/transfers".to_owned(),
                transfer(ALICE_EUR, BOB_EUR),
            ),
            ("POST", "/v1/batches".to_owned(), csv(ALICE_EUR, BOB_EUR)),
        ] {
            let mut req = stack
                .http
                .request(method.parse().unwrap(), format!("{}{path}", stack.api))
                .bearer_auth(token)
                .header("Idempotency-Key", format!("attack-{i}"));
            if let Some((content_type, body)) = body {
                req = req.header("content-type", content_type).body(body);
            }
            let r = req.send().await.unwrap();
            if r.status() != 401 {
                wrong.push(format!("{what}: {method} {path} → {}", r.status()));
            } else {
                assert_eq!(r.headers()["www-authenticate"], "Bearer");
            }
        }
    }
    // A valid token in the wrong place: REST reads the Authorization header only.
    for path in ["/v1/me", "/v1/accounts"] {
        let r = stack
            .http
            .get(format!("{}{path}?access_token={alice}", stack.api))
            .send()
            .await
            .unwrap();
        if r.status() != 401 {
            wrong.push(format!("query-string token: GET {path} → {}", r.status()));
        }
    }
    let r = stack
        .http
        .post(format!("{}/v1/transfers?access_token={alice}", stack.api))
        .header("Idempotency-Key", "attack-query")
        .json(&json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "1.00", "currency": "EUR"}))
        .send()
        .await
        .unwrap();
    if r.status() != 401 {
        wrong.push(format!(
            "query-string token: POST /v1/transfers → {}",
            r.status()
        ));
    }
    for (what, header) in [
        ("cookie", ("cookie", format!("access_token={alice}"))),
        ("Basic scheme", ("authorization", format!("Basic {alice}"))),
        ("token without scheme", ("authorization", alice.clone())),
    ] {
        let r = stack
            .http
            .get(format!("{}/v1/me", stack.api))
            .header(header.0, header.1)
            .send()
            .await
            .unwrap();
        if r.status() != 401 {
            wrong.push(format!("{what}: GET /v1/me → {}", r.status()));
        }
    }
    assert!(wrong.is_empty(), "accepted attacks:\n{}", wrong.join("\n"));

    // Nothing was published, stored or recorded as submitted.
    assert_eq!(stack.nats.transfers_published().await, published);
    assert_eq!(count("transfers").await, transfers);
    assert_eq!(count("batches").await, batches);
    let stats = stack.get(&alice, "/v1/ops/stats").await.0;
    assert_eq!(stats, 403, "alice's real token is still only a customer's");
    stack.stop().await;
}
