//! The built `bankctl` binary against a whole bank in this process (gateway,
//! processor and notifier on ephemeral ports, on the real PostgreSQL, NATS
//! and Redis): exit codes, the login cache, batch files checked locally,
//! uploaded, resubmitted safely, and results files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use system_tests::{ALICE_EUR, BOB_EUR, Stack};

const BATCH_EUR: &str = "ba7c0000-0000-4000-8000-000000000001";
const HEADER: &str = "from_account,to_account,amount,currency,reference";

/// Runs `bankctl` with its own config directory (the login cache) and no
/// BANKCTL_* variables from the environment running the tests.
struct Bankctl {
    api: String,
    home: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\n{}", self.stdout, self.stderr)
        })
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Bankctl {
    fn new(api: &str) -> Self {
        Self {
            api: api.to_owned(),
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn dir(&self) -> &Path {
        self.home.path()
    }

    fn token_file(&self) -> PathBuf {
        self.dir().join("config/bankctl/token.json")
    }

    async fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_bankctl"));
        for var in [
            "BANKCTL_API",
            "BANKCTL_TOKEN",
            "BANKCTL_PASSWORD",
            "BANKCTL_USERNAME",
            "BANKCTL_WS",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.dir())
            .env("XDG_CONFIG_HOME", self.dir().join("config"))
            .arg("--api")
            .arg(&self.api)
            .args(args)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null());
        let out = cmd.output().await.expect("run bankctl");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[]).await
    }

    async fn login(&self, user: &str) {
        let password = format!("{user}-dev-password");
        let r = self
            .run_env(
                &["login", "--username", user],
                &[("BANKCTL_PASSWORD", password.as_str())],
            )
            .await;
        assert_eq!(r.code, 0, "{r}");
    }

    /// Writes a batch file into the test's directory.
    fn file(&self, name: &str, lines: &[String]) -> String {
        let path = self.dir().join(name);
        let mut text = format!("{HEADER}\n");
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(&path, text).expect("write the batch file");
        path.display().to_string()
    }
}

fn payments(n: usize, from: &str, to: &str, amount: &str) -> Vec<String> {
    (1..=n)
        .map(|i| format!("{from},{to},{amount},EUR,payment {i}"))
        .collect()
}

fn results(path: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .expect("results file")
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_file_is_applied_once_even_when_submitted_again() {
    let stack = Stack::start().await;
    let cli = Bankctl::new(&stack.api);

    // Login caches a private token and never prints it.
    let r = cli
        .run_env(
            &["login", "--username", "batch"],
            &[("BANKCTL_PASSWORD", "batch-dev-password")],
        )
        .await;
    assert_eq!(r.code, 0, "{r}");
    let cache: Value =
        serde_json::from_str(&std::fs::read_to_string(cli.token_file()).unwrap()).unwrap();
    let token = cache["access_token"].as_str().unwrap().to_owned();
    assert!(!r.stdout.contains(&token) && !r.stderr.contains(&token));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cli.token_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let r = cli.run(&["--json", "accounts"]).await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["accounts"][0]["id"], BATCH_EUR);
    let wrong = cli
        .run_env(
            &["login", "--username", "batch"],
            &[("BANKCTL_PASSWORD", "wrong")],
        )
        .await;
    assert_eq!(wrong.code, 2, "{wrong}");
    assert!(wrong.stderr.contains("401"), "{wrong}");

    // 200 payments from the example generator.
    let example = cli
        .run(&[
            "batch", "example", "--lines", "200", "--from", BATCH_EUR, "--to", BOB_EUR,
        ])
        .await;
    assert_eq!(example.code, 0, "{example}");
    let file = cli.dir().join("payroll.csv");
    std::fs::write(&file, &example.stdout).unwrap();
    let file = file.display().to_string();

    let r = cli.run(&["--json", "batch", "submit", &file]).await;
    assert_eq!(r.code, 0, "{r}");
    let first = r.json();
    assert_eq!(first["batch"]["committed"], 200, "{r}");
    assert_eq!(first["batch"]["rejected"], 0);
    assert_eq!(first["replayed"], false);
    let key = first["idempotency_key"].as_str().unwrap();
    assert_eq!(key.len(), 64, "the key is the file's SHA-256");
    let rows = results(&format!("{file}.results.csv"));
    assert_eq!(rows[0], ["line", "id", "status", "reason"]);
    assert_eq!(rows.len(), 201);
    assert!(
        rows[1..]
            .iter()
            .all(|r| r[2] == "committed" && r[3].is_empty())
    );
    assert_eq!(rows[1][0], "2", "the header is line 1");

    // bankctl (or anything else) crashed; the same file is submitted again:
    // the same batch, nothing applied twice.
    let r = cli.run(&["--json", "batch", "submit", &file]).await;
    assert_eq!(r.code, 0, "{r}");
    let again = r.json();
    assert_eq!(again["accepted"]["id"], first["accepted"]["id"]);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["idempotency_key"], key);
    assert_eq!(again["batch"]["committed"], 200);
    let bob = stack.login("bob").await;
    assert_eq!(stack.balance(&bob, BOB_EUR).await, "2502.00");

    // Status and outcomes by id.
    let id = first["accepted"]["id"].as_str().unwrap();
    let r = cli.run(&["--json", "batch", "status", id]).await;
    assert_eq!(
        (r.code, r.json()["batch"]["done"].clone()),
        (0, Value::Bool(true))
    );
    let r = cli
        .run(&["batch", "payments", id, "--status", "rejected"])
        .await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.stdout.trim(), "line,id,status,reason");
    let r = cli.run(&["--json", "batch", "payments", id]).await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(200));

    // A different file under the same key is refused by the server.
    let other = cli.file("other.csv", &payments(1, BATCH_EUR, BOB_EUR, "3.00"));
    let r = cli
        .run(&["batch", "submit", &other, "--idempotency-key", key])
        .await;
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("Idempotency-Key reused"), "{r}");

    let report = ledger::invariants::check(&stack.db.pool).await.unwrap();
    assert!(report.holds(), "{:?}", report.violations());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_files_are_refused_with_line_and_field() {
    let stack = Stack::start().await;
    let cli = Bankctl::new(&stack.api);
    cli.login("batch").await;
    let published = stack.nats.transfers_published().await;

    // Line 5 (the header is line 1) has a bad amount: refused locally.
    let mut lines = payments(6, BATCH_EUR, BOB_EUR, "1.00");
    lines[3] = format!("{BATCH_EUR},{BOB_EUR},12.345,EUR,too precise");
    let bad = cli.file("bad.csv", &lines);
    let r = cli.run(&["batch", "submit", &bad]).await;
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("bad.csv:5: amount: \"12.345\""),
        "the line and the field are named: {r}"
    );
    assert!(r.stderr.contains("nothing was sent"), "{r}");
    let r = cli.run(&["--json", "batch", "submit", &bad]).await;
    assert_eq!(r.code, 2);
    let error = &r.json()["error"];
    assert_eq!(error["kind"], "invalid_file");
    assert_eq!(error["errors"][0]["line"], 5);
    assert_eq!(error["errors"][0]["field"], "amount");

    // Valid as text, refused by the server: someone else's account on line 3.
    let mut lines = payments(3, BATCH_EUR, BOB_EUR, "1.00");
    lines[1] = format!("{ALICE_EUR},{BOB_EUR},1.00,EUR,not mine");
    let theirs = cli.file("theirs.csv", &lines);
    let r = cli.run(&["batch", "submit", &theirs]).await;
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr
            .contains("theirs.csv:3: from_account: is not one of your accounts"),
        "{r}"
    );

    // Not logged in: refused before anything is sent.
    let stranger = Bankctl::new(&stack.api);
    let ok = stranger.file("ok.csv", &payments(1, BATCH_EUR, BOB_EUR, "1.00"));
    let r = stranger.run(&["batch", "submit", &ok]).await;
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("not logged in"), "{r}");

    assert_eq!(stack.nats.transfers_published().await, published);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overdrawing_line_ends_rejected_and_exits_1() {
    let stack = Stack::start().await;
    let cli = Bankctl::new(&stack.api);
    cli.login("alice").await;
    let lines = vec![
        format!("{ALICE_EUR},{BOB_EUR},1.00,EUR,a"),
        format!("{ALICE_EUR},{BOB_EUR},20000.00,EUR,too much"),
        format!("{ALICE_EUR},{BOB_EUR},1.00,EUR,c"),
    ];
    let file = cli.file("mixed.csv", &lines);
    let out = cli.dir().join("outcomes.csv").display().to_string();
    let r = cli
        .run(&["batch", "submit", &file, "--results", &out])
        .await;
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stdout.contains("2 committed, 1 rejected"), "{r}");
    assert!(r.stdout.contains("insufficient_funds"), "{r}");
    let rows = results(&out);
    assert_eq!(rows[2][0], "3");
    assert_eq!(
        (rows[2][2].as_str(), rows[2][3].as_str()),
        ("rejected", "insufficient_funds")
    );
    assert_eq!(rows[1][2], "committed");

    // Atomic: the same kind of file moves nothing, every line is rejected.
    let lines = vec![
        format!("{ALICE_EUR},{BOB_EUR},5.00,EUR,a"),
        format!("{ALICE_EUR},{BOB_EUR},20000.00,EUR,too much"),
    ];
    let file = cli.file("atomic.csv", &lines);
    let r = cli
        .run(&["--json", "batch", "submit", &file, "--mode", "atomic"])
        .await;
    assert_eq!(r.code, 1, "{r}");
    let v = r.json();
    assert_eq!(
        (
            v["batch"]["committed"].clone(),
            v["batch"]["rejected"].clone()
        ),
        (0.into(), 2.into())
    );
    assert_eq!(v["rejected_by_reason"]["batch_aborted"], 1);
    assert_eq!(
        stack.balance(&stack.login("alice").await, ALICE_EUR).await,
        "9998.00"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_is_sent_and_followed_to_its_end() {
    let stack = Stack::start().await;
    let cli = Bankctl::new(&stack.api);
    cli.login("alice").await;
    let send = [
        "transfer",
        "send",
        "--from",
        ALICE_EUR,
        "--to",
        BOB_EUR,
        "--amount",
        "12.50",
        "--currency",
        "EUR",
        "--reference",
        "lunch",
    ];
    let mut args = vec!["--json", "--ws", stack.ws.as_str()];
    args.extend(send);
    args.extend(["--idempotency-key", "lunch-1", "--wait"]);
    let r = cli.run(&args).await;
    assert_eq!(r.code, 0, "{r}");
    let first = r.json();
    assert_eq!(first["transfer"]["status"], "committed", "{r}");
    // The same key again: the same transfer, not a second one.
    let r = cli.run(&args).await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["transfer"]["id"], first["transfer"]["id"]);
    assert_eq!(r.json()["replayed"], true);
    let alice = stack.login("alice").await;
    assert_eq!(stack.balance(&alice, ALICE_EUR).await, "9987.50");

    // Without --ws, by polling; a transfer that overdraws ends rejected: 1.
    let r = cli
        .run(&[
            "transfer",
            "send",
            "--from",
            ALICE_EUR,
            "--to",
            BOB_EUR,
            "--amount",
            "50000",
            "--currency",
            "EUR",
            "--wait",
        ])
        .await;
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stdout.contains("rejected") && r.stdout.contains("insufficient_funds"),
        "{r}"
    );

    let id = first["transfer"]["id"].as_str().unwrap();
    let r = cli.run(&["transfer", "status", id]).await;
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("committed: 12.50 EUR"), "{r}");

    // Checked locally, nothing sent.
    let r = cli
        .run(&[
            "transfer",
            "send",
            "--from",
            ALICE_EUR,
            "--to",
            BOB_EUR,
            "--amount",
            "1.001",
            "--currency",
            "EUR",
        ])
        .await;
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("--amount \"1.001\""), "{r}");
    // Refused by the server (not her account): 2.
    let r = cli
        .run(&[
            "transfer",
            "send",
            "--from",
            BOB_EUR,
            "--to",
            ALICE_EUR,
            "--amount",
            "1",
            "--currency",
            "EUR",
        ])
        .await;
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("403"), "{r}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_is_printed_as_a_table_json_and_csv() {
    let stack = Stack::start().await;
    let cli = Bankctl::new(&stack.api);
    cli.login("alice").await;
    let r = cli
        .run(&[
            "transfer",
            "send",
            "--from",
            ALICE_EUR,
            "--to",
            BOB_EUR,
            "--amount",
            "7.25",
            "--currency",
            "EUR",
            "--reference",
            "lunch",
            "--wait",
        ])
        .await;
    assert_eq!(r.code, 0, "{r}");
    // Whole days in UTC: today's transfer is in a statement up to tomorrow.
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (
        (today - chrono::Days::new(1)).to_string(),
        (today + chrono::Days::new(1)).to_string(),
    );
    let range = [
        "--account",
        ALICE_EUR,
        "--from",
        from.as_str(),
        "--to",
        to.as_str(),
    ];

    let r = cli
        .run(&[&["--json", "statement"][..], &range[..]].concat())
        .await;
    assert_eq!(r.code, 0, "{r}");
    let s = r.json();
    assert_eq!(s["closing_balance"], "9992.75", "{s}");
    let last = s["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["amount"].as_str(), last["reference"].as_str()),
        (Some("-7.25"), Some("lunch"))
    );

    let r = cli.run(&[&["statement"][..], &range[..]].concat()).await;
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains("closing balance") && r.stdout.contains("9992.75"),
        "{r}"
    );
    assert!(r.stdout.contains("lunch"), "{r}");

    let r = cli
        .run(&[&["statement", "--csv"][..], &range[..]].concat())
        .await;
    assert_eq!(r.code, 0, "{r}");
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some(shared::statement::CSV_HEADER));
    assert!(lines.last().unwrap().contains(",-7.25,9992.75,"), "{r}");

    // Someone else's account is unknown; a bad range is refused: exit 2.
    let bob = Bankctl::new(&stack.api);
    bob.login("bob").await;
    let r = bob.run(&[&["statement"][..], &range[..]].concat()).await;
    assert_eq!(r.code, 2, "{r}");
    let r = cli
        .run(&[
            "statement",
            "--account",
            ALICE_EUR,
            "--from",
            to.as_str(),
            "--to",
            from.as_str(),
        ])
        .await;
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("to"), "{r}");
    stack.stop().await;
}

#[tokio::test]
async fn an_unreachable_gateway_exits_3() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let cli = Bankctl::new(&format!("http://127.0.0.1:{port}"));
    let r = cli
        .run(&["--retries", "0", "--token", "t", "accounts"])
        .await;
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("cannot connect"), "{r}");
    let file = cli.file("ok.csv", &payments(2, BATCH_EUR, BOB_EUR, "1.00"));
    let r = cli
        .run(&[
            "--json",
            "--retries",
            "1",
            "--token",
            "t",
            "batch",
            "submit",
            &file,
        ])
        .await;
    assert_eq!(r.code, 3, "{r}");
    assert_eq!(r.json()["error"]["kind"], "transport");
}

/// The measured run: `cargo test -p bankctl -- --ignored --nocapture
/// hundred_thousand_lines`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: minutes on 2 cores"]
async fn hundred_thousand_lines() {
    let lines = std::env::var("BANKCTL_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000usize);
    let stack = Stack::start().await;
    let cli = Bankctl::new(&stack.api);
    cli.login("batch").await;
    let n = lines.to_string();
    let example = cli
        .run(&[
            "batch", "example", "--lines", &n, "--from", BATCH_EUR, "--to", BOB_EUR,
        ])
        .await;
    assert_eq!(example.code, 0, "{example}");
    let file = cli.dir().join("hundred-thousand.csv");
    std::fs::write(&file, &example.stdout).unwrap();
    let bytes = example.stdout.len();
    let started = Instant::now();
    let r = cli
        .run(&["--json", "batch", "submit", &file.display().to_string()])
        .await;
    let total = started.elapsed();
    assert_eq!(r.code, 0, "{r}");
    let v = r.json();
    assert_eq!(v["batch"]["committed"].as_u64(), Some(lines as u64), "{r}");
    let results = std::fs::read_to_string(v["results"].as_str().unwrap()).unwrap();
    assert_eq!(results.lines().count(), lines + 1);
    let t = &v["timings"];
    let secs = |k: &str| t[k].as_f64().unwrap_or_default();
    let upload = secs("upload_seconds");
    eprintln!("{}", r.stderr.trim());
    eprintln!(
        "{lines} lines, {bytes} bytes: local check {:.1}s; upload until 202 {upload:.1}s \
         ({:.0} payments/s); processing after the 202 {:.1}s; results file {:.1}s; \
         whole command {:.1}s (debug builds of bankctl and of the bank, in-process)",
        secs("check_seconds"),
        lines as f64 / upload.max(0.001),
        secs("processing_seconds"),
        secs("results_seconds"),
        total.as_secs_f64(),
    );
    stack.stop().await;
}
