//! The services' PostgreSQL roles (`bankadmin migrate --roles`,
//! admin/src/db_roles.sql) against the real server: the gateway's role
//! reads but cannot write the ledger or run DDL, the processor's cannot
//! read users, and applying twice changes nothing. The roles get names of
//! their own (roles are cluster-wide) and are dropped at the end.

use admin::db_roles::{self, ServiceRole};
use testkit::{TestDb, admin_database_url, unique};

/// The test database's URL as `role`.
fn url_as(db: &TestDb, role: &str) -> String {
    db.url
        .replacen("postgres://postgres@", &format!("postgres://{role}:pw@"), 1)
}

/// The SQLSTATE of `sql` run by `pool` (`None` when it succeeded).
async fn sqlstate(pool: &sqlx::PgPool, sql: &'static str) -> Option<String> {
    match sqlx::query(sql).execute(pool).await {
        Ok(_) => None,
        Err(e) => Some(
            e.as_database_error()
                .and_then(|d| d.code().map(|c| c.into_owned()))
                .unwrap_or_else(|| format!("not a database error: {e}")),
        ),
    }
}

#[tokio::test]
async fn each_service_role_has_only_its_grants() {
    let db = TestDb::new().await;
    let prefix = format!("r{}", unique());
    let role = |service: &str| ServiceRole {
        name: format!("{prefix}_{service}"),
        password: "pw".into(),
    };
    let (gateway, processor) = (role("gateway"), role("processor"));
    db_roles::apply(&db.pool, &gateway, &processor)
        .await
        .expect("roles");
    // Idempotent: the migrate job runs it on every deploy.
    db_roles::apply(&db.pool, &gateway, &processor)
        .await
        .expect("roles again");

    let gw = ledger::pool(&url_as(&db, &gateway.name), 1).expect("gateway url");
    let pr = ledger::pool(&url_as(&db, &processor.name), 1).expect("processor url");
    const DENIED: Option<&str> = Some("42501");

    assert_eq!(sqlstate(&gw, "SELECT count(*) FROM entries").await, None);
    assert_eq!(sqlstate(&gw, "SELECT count(*) FROM users").await, None);
    assert_eq!(
        sqlstate(
            &gw,
            "INSERT INTO entries (transfer_id, account_id, amount, balance_after) \
             VALUES (gen_random_uuid(), gen_random_uuid(), 1, 1)"
        )
        .await
        .as_deref(),
        DENIED
    );
    assert_eq!(
        sqlstate(&gw, "UPDATE accounts SET balance = balance")
            .await
            .as_deref(),
        DENIED
    );
    assert_eq!(
        sqlstate(&gw, "DELETE FROM transfers").await.as_deref(),
        DENIED
    );
    assert_eq!(
        sqlstate(&gw, "CREATE TABLE probe (i int)").await.as_deref(),
        DENIED
    );
    // Its own password change, but never a role.
    assert_eq!(
        sqlstate(
            &gw,
            "UPDATE users SET password_hash = password_hash WHERE false"
        )
        .await,
        None
    );
    assert_eq!(
        sqlstate(&gw, "UPDATE users SET role = role WHERE false")
            .await
            .as_deref(),
        DENIED
    );
    assert_eq!(
        sqlstate(&gw, "UPDATE holds SET status = status WHERE false")
            .await
            .as_deref(),
        DENIED
    );
    // What the gateway does write: its refresh tokens.
    assert_eq!(
        sqlstate(&gw, "DELETE FROM refresh_tokens WHERE false").await,
        None
    );

    assert_eq!(
        sqlstate(&pr, "SELECT count(*) FROM users").await.as_deref(),
        DENIED
    );
    assert_eq!(
        sqlstate(&pr, "SELECT count(*) FROM refresh_tokens")
            .await
            .as_deref(),
        DENIED
    );
    assert_eq!(
        sqlstate(&pr, "UPDATE accounts SET balance = balance WHERE false").await,
        None
    );
    // Holds move to their final state in the processor's transaction.
    assert_eq!(
        sqlstate(&pr, "UPDATE holds SET status = status WHERE false").await,
        None
    );
    assert_eq!(
        sqlstate(&pr, "SELECT count(*) FROM hold_actions").await,
        None
    );
    assert_eq!(
        sqlstate(&pr, "INSERT INTO audit_log (action) VALUES ('x')")
            .await
            .as_deref(),
        DENIED
    );

    gw.close().await;
    pr.close().await;
    // Their grants (in this database and on it) first, then the roles.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP OWNED BY {0}_gateway, {0}_processor",
        prefix
    )))
    .execute(&db.pool)
    .await
    .expect("drop owned");
    drop(db);
    let admin = ledger::pool(&admin_database_url(), 1).expect("admin url");
    for service in ["gateway", "processor"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP ROLE IF EXISTS {prefix}_{service}"
        )))
        .execute(&admin)
        .await
        .expect("drop role");
    }
}
