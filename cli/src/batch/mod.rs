//! `bankctl batch submit|status|payments|example`.
//!
//! Submitting is safe to repeat by construction: the default idempotency key
//! is the SHA-256 of the file, so after any crash (of bankctl, the gateway or
//! the processor) running the same command again names the same batch, and
//! the bank publishes and applies nothing twice. bankctl itself keeps no state.

mod example;
mod follow;
mod outcomes;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde_json::json;
use shared::money::Currency;
use shared::transfer::IdempotencyKey;
use tokio::io::AsyncReadExt;

use crate::Ctx;
use crate::api::{self, Batch};
use crate::cli::{Mode, SubmitArgs};
use crate::error::{Failure, Outcome};
use crate::transfer::reason_text;
use crate::validate::{self, Checked};

pub use example::example;
use follow::{expected_id, follow_early, wait_done};
pub use outcomes::payments;
use outcomes::write_results;

/// Bytes per upload chunk.
const CHUNK: usize = 128 * 1024;

fn outcome(b: &Batch) -> Outcome {
    if b.rejected > 0 {
        Outcome::SomeRejected
    } else {
        Outcome::Ok
    }
}

fn totals_text(totals: &BTreeMap<String, rust_decimal::Decimal>) -> String {
    totals
        .iter()
        .map(|(code, sum)| match Currency::parse(code) {
            Ok(c) => format!("{code} {}", c.format(*sum)),
            Err(_) => format!("{code} {sum}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(b: &Batch) -> String {
    let state = if b.done { "done" } else { "in progress" };
    let mut text = format!(
        "batch {} ({}, {state}): {} payments: {} committed, {} rejected, {} pending",
        b.id, b.mode, b.count, b.committed, b.rejected, b.pending
    );
    for t in &b.totals {
        text.push_str(&format!(
            "\n  {}: committed {}, rejected {}",
            t.currency, t.committed, t.rejected
        ));
    }
    text
}

/// A body that streams the file in chunks, counting bytes on `bar`.
fn file_body(path: &Path, bar: &ProgressBar) -> Result<api::Body, Failure> {
    let file = File::open(path)
        .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", path.display())))?;
    bar.reset(); // a retry starts over
    bar.set_message("");
    let bar = bar.clone();
    let chunks = futures::stream::try_unfold(tokio::fs::File::from_std(file), move |mut file| {
        let bar = bar.clone();
        async move {
            let mut buf = vec![0u8; CHUNK];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                bar.set_message("sent");
                return Ok(None);
            }
            buf.truncate(n);
            bar.inc(n as u64);
            Ok(Some((bytes::Bytes::from(buf), file)))
        }
    });
    Ok(api::streamed(chunks))
}

/// Seconds spent in each step of `batch submit`.
#[derive(Default, serde::Serialize)]
struct Timings {
    check_seconds: f64,
    upload_seconds: f64,
    processing_seconds: f64,
    results_seconds: f64,
}

/// Checks the file locally; returns what was learned and the key to use.
async fn check(args: &SubmitArgs) -> Result<(Checked, String), Failure> {
    let path = args.file.clone();
    let format = validate::format_of(&path);
    let atomic = args.mode == Mode::Atomic;
    let checked = tokio::task::spawn_blocking(move || validate::check_file(&path, format, atomic))
        .await
        .map_err(|e| Failure::invalid(format!("the file check failed: {e}")))??;
    let key = match &args.idempotency_key {
        Some(k) => {
            IdempotencyKey::parse(k)
                .map_err(|e| Failure::invalid(format!("--idempotency-key: {e}")))?;
            k.clone()
        }
        None => checked.sha256.clone(),
    };
    Ok((checked, key))
}

pub async fn submit(ctx: &Ctx, args: SubmitArgs) -> Result<Outcome, Failure> {
    let name = args.file.display().to_string();
    let mut timings = Timings::default();
    let step = Instant::now();
    let (checked, key) = check(&args).await?;
    timings.check_seconds = step.elapsed().as_secs_f64();
    ctx.out.note(&format!(
        "{name}: {} payments ({}), {} bytes, checked\nidempotency key: {key}",
        checked.payments,
        totals_text(&checked.totals),
        checked.bytes
    ));

    let step = Instant::now();
    let bars = ctx.out.bars();
    let upload_bar = bars.upload(checked.bytes);
    let processing_bar = bars.processing(checked.payments);
    processing_bar.set_message("queueing…");
    let body = || file_body(&args.file, &upload_bar);
    let mode = match args.mode {
        Mode::Atomic => "atomic",
        Mode::Independent => "independent",
    };
    let content_type = validate::format_of(&args.file).content_type();
    let upload = ctx.api.submit_batch(&key, mode, content_type, &body);
    // The gateway answers only once every payment is queued, and the ledger
    // applies them meanwhile: show that progress during the wait.
    let accepted = match expected_id(ctx, &key).await {
        Some(id) => tokio::select! {
            accepted = upload => accepted,
            never = follow_early(ctx, &id, &processing_bar) => match never {},
        },
        None => upload.await,
    };
    let accepted = accepted.map_err(|f| {
        bars.clear();
        refused_file(f, &name)
    })?;
    upload_bar.finish();
    timings.upload_seconds = step.elapsed().as_secs_f64();
    let id = accepted.body.id.clone();
    let again = if accepted.replayed {
        " (submitted before: same batch, nothing is applied twice)"
    } else {
        ""
    };
    ctx.out.note(&format!(
        "batch {id}: {} payments queued in {:.1}s{again}",
        accepted.body.count, timings.upload_seconds
    ));
    let mut report = json!({
        "file": name,
        "idempotency_key": key,
        "replayed": accepted.replayed,
        "accepted": accepted.body,
    });
    if args.no_wait {
        bars.clear();
        report["timings"] = json!(timings);
        ctx.out.result(&report, || {
            format!("batch {id} accepted\n  follow it: bankctl batch status {id} --watch")
        });
        return Ok(Outcome::Ok);
    }

    let step = Instant::now();
    processing_bar.set_message("");
    let batch = wait_done(ctx, &id, Duration::from_secs(args.timeout), &processing_bar).await?;
    timings.processing_seconds = step.elapsed().as_secs_f64();
    let step = Instant::now();
    let results = args.results.clone().unwrap_or_else(|| {
        let mut p = args.file.clone().into_os_string();
        p.push(".results.csv");
        PathBuf::from(p)
    });
    let reasons = write_results(ctx, &batch, &results, &bars.results(batch.count)).await;
    bars.clear();
    let reasons = reasons?;
    timings.results_seconds = step.elapsed().as_secs_f64();
    report["batch"] = json!(batch);
    report["results"] = json!(results.display().to_string());
    report["rejected_by_reason"] = json!(reasons);
    report["timings"] = json!(timings);
    ctx.out.result(&report, || {
        let mut text = describe(&batch);
        for (reason, n) in &reasons {
            text.push_str(&format!("\n  rejected {n}: {}", reason_text(reason)));
        }
        text.push_str(&format!(
            "\n  check {:.1}s, upload {:.1}s, processing {:.1}s after upload, results {:.1}s\n  results: {}",
            timings.check_seconds,
            timings.upload_seconds,
            timings.processing_seconds,
            timings.results_seconds,
            results.display()
        ));
        text
    });
    Ok(outcome(&batch))
}

/// Server errors about lines of the file name the file, like local ones.
fn refused_file(f: Failure, name: &str) -> Failure {
    match f {
        Failure::Refused {
            problem,
            mut hint,
            file: None,
        } => {
            if problem.kind.ends_with("/idempotency-key-reused") {
                hint = Some(
                    "this key was used for a different file or mode; to submit it as a new \
                     batch, pass another --idempotency-key"
                        .into(),
                );
            }
            let lines = problem.errors.iter().any(|e| e.line.is_some());
            Failure::Refused {
                problem,
                hint,
                file: lines.then(|| name.to_owned()),
            }
        }
        other => other,
    }
}

pub async fn status(
    ctx: &Ctx,
    id: &str,
    watch: bool,
    timeout: Duration,
) -> Result<Outcome, Failure> {
    let batch = if watch {
        let bars = ctx.out.bars();
        let done = wait_done(ctx, id, timeout, &bars.processing(0)).await;
        bars.clear();
        done?
    } else {
        ctx.api.batch(id).await?
    };
    ctx.out
        .result(&json!({ "batch": batch }), || describe(&batch));
    Ok(outcome(&batch))
}
