//! What the user sees. Results go to stdout: words, or with `--json` one
//! JSON document per command for scripts. Notes, progress bars and errors go
//! to stderr, so a script reading stdout never gets them mixed in.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::error::{Failure, FieldError};

#[derive(Debug, Clone, Copy)]
pub struct Out {
    json: bool,
}

impl Out {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// The command's result: `value` with `--json`, else the text `human` makes.
    pub fn result(&self, value: &Value, human: impl FnOnce() -> String) {
        let text = if self.json {
            value.to_string()
        } else {
            human()
        };
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`bankctl … | head`) is not an error worth a panic.
        let _ = writeln!(stdout, "{}", text.trim_end());
    }

    /// A note for a person (not shown with `--json`), above any bars.
    pub fn note(&self, text: &str) {
        if !self.json {
            warn(text);
        }
    }

    /// Progress bars only for a person watching: never with `--json`, never
    /// when stderr is a file or a pipe (a log would fill with redraws).
    pub fn bars(&self) -> Bars {
        let target = if self.json || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(target);
        if !multi.is_hidden() {
            *drawing() = Some(multi.clone());
        }
        Bars { multi }
    }

    /// Prints why a command failed: to stderr in words, and with `--json`
    /// also as `{"error":{…}}` on stdout so a script sees it in one place.
    pub fn failure(&self, failure: &Failure) {
        eprintln!("{}", describe(failure));
        if self.json {
            self.result(&json!({"error": failure_json(failure)}), String::new);
        }
    }
}

/// The bars of one command, drawn together: an upload's bytes, then the
/// payments decided (which starts moving while the upload is still being
/// queued), then the outcomes fetched.
pub struct Bars {
    multi: MultiProgress,
}

/// How often a progress bar redraws on its own (its spinner and rate move
/// even while no progress is reported).
const BAR_TICK: Duration = Duration::from_millis(200);

impl Bars {
    fn add(&self, len: u64, template: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(len));
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(BAR_TICK);
        bar
    }

    /// Bytes of an upload sent.
    pub fn upload(&self, bytes: u64) -> ProgressBar {
        self.add(bytes, "upload     [{bar:40}] {bytes}/{total_bytes} {msg}")
    }

    /// Payments of a batch decided (committed or rejected).
    pub fn processing(&self, count: u64) -> ProgressBar {
        self.add(
            count,
            "processing [{bar:40}] {pos}/{len} {elapsed} eta {eta} {msg}",
        )
    }

    /// Outcomes fetched for the results file.
    pub fn results(&self, count: u64) -> ProgressBar {
        self.add(count, "results    [{bar:40}] {pos}/{len} {msg}")
    }

    /// Removes the bars before the summary is printed.
    pub fn clear(&self) {
        let _ = self.multi.clear();
        *drawing() = None;
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        *drawing() = None;
    }
}

/// The bars being drawn, if any: a warning printed straight to stderr
/// would be torn up by the next redraw.
fn drawing() -> std::sync::MutexGuard<'static, Option<MultiProgress>> {
    static DRAWING: Mutex<Option<MultiProgress>> = Mutex::new(None);
    DRAWING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A line on stderr, above the progress bars when they are drawn. Used
/// for warnings with `--json` too: a log should say why a command was slow.
pub fn warn(text: &str) {
    let multi = drawing().clone();
    match multi {
        Some(m) if m.println(text).is_ok() => {}
        _ => eprintln!("{text}"),
    }
}

/// A line-numbered error the way compilers print them: `file:line: field: message`.
pub fn field_error(file: Option<&str>, e: &FieldError) -> String {
    match (file, e.line) {
        (Some(f), Some(line)) => format!("{f}:{line}: {}: {}", e.field, e.message),
        (None, Some(line)) => format!("line {line}: {}: {}", e.field, e.message),
        _ => format!("{}: {}", e.field, e.message),
    }
}

fn describe(failure: &Failure) -> String {
    let mut text = format!("error: {failure}");
    // `detail` is already on the first line: a field error that only
    // repeats it is not listed again.
    let mut list = |file: Option<&str>, errors: &[FieldError], detail: &str| {
        for e in errors
            .iter()
            .filter(|e| e.line.is_some() || e.message != detail)
        {
            text.push_str("\n  ");
            text.push_str(&field_error(file, e));
        }
    };
    match failure {
        Failure::InvalidFile {
            file,
            errors,
            truncated,
        } => {
            list(Some(file), errors, "");
            if *truncated {
                text.push_str(&format!(
                    "\n  (stopped after the first {} errors)",
                    errors.len()
                ));
            }
        }
        Failure::Refused {
            problem,
            hint,
            file,
        } => {
            list(file.as_deref(), &problem.errors, &problem.detail);
            if let Some(h) = hint {
                text.push_str(&format!("\n  hint: {h}"));
            }
        }
        Failure::Server(problem) => list(None, &problem.errors, &problem.detail),
        Failure::Invalid(_) | Failure::Transport(_) => {}
    }
    text
}

fn failure_json(failure: &Failure) -> Value {
    let mut v = json!({
        "kind": failure.kind(),
        "exit_code": failure.exit_code(),
        "message": failure.to_string(),
    });
    match failure {
        Failure::InvalidFile {
            file,
            errors,
            truncated,
        } => {
            v["file"] = json!(file);
            v["errors"] = json!(errors);
            v["truncated"] = json!(truncated);
        }
        Failure::Refused { problem, .. } | Failure::Server(problem) => {
            v["problem"] = json!(problem);
        }
        Failure::Invalid(_) | Failure::Transport(_) => {}
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Problem;

    #[test]
    fn server_errors_list_lines_and_fields() {
        let f = Failure::Refused {
            problem: Box::new(Problem {
                title: "Invalid request".into(),
                status: 422,
                detail: "One or more fields are invalid; see `errors`.".into(),
                errors: vec![FieldError {
                    field: "amount".into(),
                    message: "must be greater than zero".into(),
                    line: Some(3),
                }],
                ..Problem::default()
            }),
            hint: None,
            file: None,
        };
        let text = describe(&f);
        assert!(text.starts_with("error: Invalid request (422): One or more"));
        assert!(text.contains("\n  line 3: amount: must be greater than zero"));
        assert_eq!(failure_json(&f)["problem"]["errors"][0]["line"], 3);
    }
}
