//! The stack as a client sees it: logins, transfers, reads and sockets,
//! each returning what the tests assert on.

use std::time::Duration;

use serde_json::Value;

use crate::{Stack, Ws};

/// How long a transfer may take to reach `committed` or `rejected`.
const FINAL_STATE_WAIT: Duration = Duration::from_secs(20);

impl Stack {
    /// Logs a demo user in; the whole token response.
    pub async fn login_response(&self, user: &str) -> testkit::Login {
        testkit::login(&self.http, &self.api, user, &testkit::dev_password(user))
            .await
            .unwrap_or_else(|e| panic!("login as {user}: {e}"))
    }

    /// Logs a demo user in; the access token.
    pub async fn login(&self, user: &str) -> String {
        self.login_response(user).await.access_token
    }

    /// A login attempt with any password; returns status, headers and body.
    pub async fn try_login(
        &self,
        user: &str,
        password: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self
            .http
            .post(format!("{}/v1/auth/login", self.api))
            .json(&serde_json::json!({"username": user, "password": password}))
            .send()
            .await
            .expect("login request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }

    /// POSTs a transfer; returns status, headers and body.
    pub async fn transfer(
        &self,
        token: &str,
        key: &str,
        body: &Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self
            .http
            .post(format!("{}/v1/transfers", self.api))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("transfer request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// POSTs `body` (if any) to `path` with an Idempotency-Key; returns
    /// status, headers and body.
    pub async fn post_keyed(
        &self,
        token: &str,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut r = self
            .http
            .post(format!("{}{path}", self.api))
            .bearer_auth(token)
            .header("Idempotency-Key", key);
        if let Some(body) = body {
            r = r.json(body);
        }
        let r = r.send().await.expect("POST");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// Waits until GET `path` answers 200 with a body `done` accepts.
    pub async fn wait_for(&self, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        testkit::eventually(FINAL_STATE_WAIT, path, || async {
            let (status, body) = self.get(token, path).await;
            (status == 200 && done(&body)).then_some(body)
        })
        .await
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.api))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn balance(&self, token: &str, account: &str) -> String {
        let (status, body) = self.get(token, &format!("/v1/accounts/{account}")).await;
        assert_eq!(status, 200, "{body}");
        body["balance"].as_str().expect("balance").to_owned()
    }

    /// Waits until the transfer is committed or rejected; returns its view.
    pub async fn final_state(&self, token: &str, id: &str) -> Value {
        testkit::eventually(FINAL_STATE_WAIT, "a final transfer state", || async {
            let (status, body) = self.get(token, &format!("/v1/transfers/{id}")).await;
            (status == 200 && body["status"] != "pending").then_some(body)
        })
        .await
    }

    pub async fn connect_ws(&self, token: &str, since: Option<&str>) -> Ws {
        let mut url = format!("{}?access_token={token}", self.ws);
        if let Some(s) = since {
            url.push_str(&format!("&since={s}"));
        }
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket connect");
        Ws { socket }
    }
}
