//! Balance as of a moment and statements, against the whole stack: both
//! are read from the entries, agree with each other and with the entries'
//! `balance_after`, as JSON and as CSV; other people's accounts stay
//! invisible and bad parameters are a 400 naming the parameter.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use system_tests::*;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("{v} is not a string")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// Sends a EUR transfer and waits until it is committed; its id.
async fn pay(
    stack: &Stack,
    token: &str,
    key: &str,
    from: &str,
    to: &str,
    amount: &str,
    reference: &str,
) -> String {
    let body = json!({"from_account": from, "to_account": to, "amount": amount,
                      "currency": "EUR", "reference": reference});
    let (status, _, view) = stack.transfer(token, key, &body).await;
    assert_eq!(status, 202, "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    assert_eq!(stack.final_state(token, &id).await["status"], "committed");
    id
}

fn balance_path(account: &str, as_of: DateTime<Utc>) -> String {
    format!("/v1/accounts/{account}/balance?as_of={}", rfc3339(as_of))
}

fn statement_path(account: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!(
        "/v1/accounts/{account}/statement?from={}&to={}",
        rfc3339(from),
        rfc3339(to)
    )
}

/// Splits one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn balances_as_of_and_statements_follow_the_entries() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let bob = stack.login("bob").await;

    let before = Utc::now();
    let out = pay(&stack, &alice, "st-1", ALICE_EUR, BOB_EUR, "12.50", "rent").await;
    let between = Utc::now();
    let back = pay(
        &stack,
        &bob,
        "st-2",
        BOB_EUR,
        ALICE_EUR,
        "2.00",
        "back, \"thanks\"",
    )
    .await;
    let after = Utc::now();

    // As of: before the transfer, between the two, after both, and now.
    for (at, expected) in [
        (before, "10000.00"),
        (between, "9987.50"),
        (after, "9989.50"),
    ] {
        let (status, body) = stack.get(&alice, &balance_path(ALICE_EUR, at)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["balance"], expected, "as of {at}");
        assert_eq!(body["currency"], "EUR");
        assert_eq!(body["account_id"], ALICE_EUR);
    }
    let (_, now) = stack
        .get(&alice, &format!("/v1/accounts/{ALICE_EUR}/balance"))
        .await;
    assert_eq!(now["balance"], stack.balance(&alice, ALICE_EUR).await);

    // The statement from before the first transfer to after the second.
    let (status, s) = stack
        .get(&alice, &statement_path(ALICE_EUR, before, after))
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["opening_balance"], "10000.00");
    assert_eq!(s["closing_balance"], "9989.50");
    assert_eq!(s["total_debits"], "12.50");
    assert_eq!(s["total_credits"], "2.00");
    assert_eq!(s["entry_count"], 2);
    assert_eq!(
        dec(&s["closing_balance"]) - dec(&s["opening_balance"]),
        dec(&s["total_credits"]) - dec(&s["total_debits"])
    );
    let entries = s["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["transfer_id"], out.as_str());
    assert_eq!(entries[0]["amount"], "-12.50");
    assert_eq!(entries[0]["counterparty_account"], BOB_EUR);
    assert_eq!(entries[0]["reference"], "rent");
    assert_eq!(entries[1]["transfer_id"], back.as_str());
    assert_eq!(entries[1]["amount"], "2.00");
    // The running balance is each entry's balance_after in the ledger.
    let (_, page) = stack
        .get(&alice, &format!("/v1/accounts/{ALICE_EUR}/entries?limit=2"))
        .await;
    for e in entries {
        let ledger = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == e["entry_id"])
            .unwrap_or_else(|| panic!("entry {e} in the ledger"));
        assert_eq!(e["running_balance"], ledger["balance_after"]);
    }
    assert_eq!(entries[1]["running_balance"], s["closing_balance"]);

    // A window holding only the second transfer opens where the first left.
    let (_, late) = stack
        .get(&alice, &statement_path(ALICE_EUR, between, after))
        .await;
    assert_eq!(late["opening_balance"], "9987.50");
    assert_eq!(late["entry_count"], 1);

    // CSV: the same rows, the figures in headers, as a named attachment.
    let r = stack
        .http
        .get(format!(
            "{}{}",
            stack.api,
            statement_path(ALICE_EUR, before, after)
        ))
        .bearer_auth(&alice)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert_eq!(h["bank-opening-balance"], "10000.00");
    assert_eq!(h["bank-closing-balance"], "9989.50");
    assert_eq!(h["bank-total-debits"], "12.50");
    assert_eq!(h["bank-total-credits"], "2.00");
    let disposition = h["content-disposition"].to_str().unwrap();
    let name = format!(
        "statement-{ALICE_EUR}-{}-{}.csv",
        before.format("%Y-%m-%d"),
        after.format("%Y-%m-%d")
    );
    assert!(
        disposition.starts_with("attachment") && disposition.contains(&name),
        "{disposition}"
    );
    let text = r.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(shared::statement::CSV_HEADER));
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    assert_eq!(rows.len(), entries.len());
    for (row, e) in rows.iter().zip(entries) {
        assert_eq!(row[0], e["entry_id"].to_string());
        assert_eq!(row[1], e["transfer_id"].as_str().unwrap());
        let csv_at: DateTime<Utc> = row[2].parse().unwrap();
        let json_at: DateTime<Utc> = e["created_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(csv_at, json_at);
        assert_eq!(row[3], e["amount"].as_str().unwrap());
        assert_eq!(row[4], e["running_balance"].as_str().unwrap());
        assert_eq!(row[5], e["counterparty_account"].as_str().unwrap());
        assert_eq!(row[6], e["reference"].as_str().unwrap());
    }
    assert_eq!(rows[1][6], "back, \"thanks\"");
    // `format=csv` chooses CSV too, whatever the Accept header says.
    let r = stack
        .http
        .get(format!(
            "{}{}&format=csv",
            stack.api,
            statement_path(ALICE_EUR, before, after)
        ))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), text);

    // Ops and the reverser read any account; nobody else sees alice's.
    for reader in ["ops", "rita"] {
        let token = stack.login(reader).await;
        let (status, _) = stack
            .get(&token, &statement_path(ALICE_EUR, before, after))
            .await;
        assert_eq!(status, 200, "{reader}");
        let (status, _) = stack.get(&token, &balance_path(ALICE_EUR, after)).await;
        assert_eq!(status, 200, "{reader}");
    }
    for path in [
        statement_path(ALICE_EUR, before, after),
        balance_path(ALICE_EUR, after),
    ] {
        let (status, body) = stack.get(&bob, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        let r = stack
            .http
            .get(format!("{}{path}", stack.api))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_parameters_are_a_400_naming_the_parameter() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let base = format!("/v1/accounts/{ALICE_EUR}");
    let cases = [
        (format!("{base}/statement?to=2026-02-01T00:00:00Z"), "from"),
        (format!("{base}/statement?from=2026-01-01T00:00:00Z"), "to"),
        (
            format!("{base}/statement?from=yesterday&to=2026-02-01T00:00:00Z"),
            "from",
        ),
        (
            format!("{base}/statement?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"),
            "to",
        ),
        (
            format!("{base}/statement?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"),
            "to",
        ),
        (
            format!("{base}/statement?from=2025-01-01T00:00:00Z&to=2026-01-03T00:00:00Z"),
            "to",
        ),
        (
            format!(
                "{base}/statement?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&format=xml"
            ),
            "format",
        ),
        (
            format!("{base}/balance?as_of=2026-13-01T00:00:00Z"),
            "as_of",
        ),
        (format!("{base}/balance?as_of=now"), "as_of"),
    ];
    for (path, param) in cases {
        let r = stack
            .http
            .get(format!("{}{path}", stack.api))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["field"], param, "{path}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(param), "{body}");
    }
    // A full 366-day range is fine; an offset with `+` works when encoded.
    let (status, body) = stack
        .get(
            &alice,
            &format!("{base}/statement?from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["entry_count"], 0);
    let (status, body) = stack
        .get(
            &alice,
            &format!("{base}/balance?as_of=2020-01-01T00:00:00%2B01:00"),
        )
        .await;
    assert_eq!(
        (status, body["balance"].as_str()),
        (200, Some("0.00")),
        "{body}"
    );
    stack.stop().await;
}

/// A statement holds a database connection while its client reads it, so
/// only a few stream at once: one more is a 429 until a reader is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_a_few_statements_stream_at_once() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    // Years-old entries, far more than socket buffers hold (~20 MB of CSV).
    sqlx::query(
        "INSERT INTO entries (transfer_id, account_id, amount, balance_after, created_at)
         SELECT gen_random_uuid(), $1::uuid, 1, 0, timestamptz '2020-01-01' + i * interval '1 second'
           FROM generate_series(1, 150000) i",
    )
    .bind(ALICE_EUR)
    .execute(&stack.db.pool)
    .await
    .unwrap();
    let url = format!(
        "{}/v1/accounts/{ALICE_EUR}/statement?from=2020-01-01T00:00:00Z&to=2020-12-31T00:00:00Z&format=csv",
        stack.api
    );
    let open = || stack.http.get(&url).bearer_auth(&alice).send();
    // Four readers that do not read.
    let mut readers = Vec::new();
    for _ in 0..4 {
        let r = open().await.unwrap();
        assert_eq!(r.status(), 200);
        readers.push(r);
    }
    let r = open().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("/too-many-requests"),
        "{problem}"
    );
    assert!(problem["detail"].as_str().unwrap().contains("statements"));
    // One reader reads to the end: its slot is free again.
    let first = readers.remove(0);
    let text = first.text().await.unwrap();
    assert_eq!(text.lines().count(), 150_001);
    let r = testkit::eventually(
        std::time::Duration::from_secs(10),
        "a free slot",
        || async {
            let r = open().await.ok()?;
            (r.status() == 200).then_some(r)
        },
    )
    .await;
    drop(r);
    drop(readers);
    stack.stop().await;
}
