//! A batch's per-payment outcomes: the results file and `batch payments`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;

use crate::Ctx;
use crate::api::{Batch, Payment};
use crate::error::{Failure, Outcome};
use crate::validate::csv_field;

/// Calls `each` with every outcome of the batch, page by page.
async fn each_payment(
    ctx: &Ctx,
    id: &str,
    status: Option<&str>,
    mut each: impl FnMut(&Payment) -> std::io::Result<()>,
) -> Result<(), Failure> {
    let mut cursor: Option<String> = None;
    loop {
        let page = ctx
            .api
            .batch_payments(id, status, cursor.as_deref())
            .await?;
        for p in &page.items {
            each(p).map_err(|e| Failure::invalid(format!("cannot write the outcomes: {e}")))?;
        }
        match page.next_cursor {
            Some(c) if !page.items.is_empty() => cursor = Some(c),
            _ => return Ok(()),
        }
    }
}

fn result_row(p: &Payment) -> String {
    format!(
        "{},{},{},{}",
        p.line,
        csv_field(&p.id),
        csv_field(&p.status),
        csv_field(p.reason.as_deref().unwrap_or(""))
    )
}

/// Writes `line,id,status,reason` for every payment (to a temporary file,
/// renamed when complete); returns the rejected count per reason.
pub async fn write_results(
    ctx: &Ctx,
    batch: &Batch,
    path: &Path,
    bar: &ProgressBar,
) -> Result<BTreeMap<String, u64>, Failure> {
    let io = |e: std::io::Error| Failure::invalid(format!("cannot write {}: {e}", path.display()));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    let mut out = BufWriter::new(File::create(&tmp).map_err(io)?);
    writeln!(out, "line,id,status,reason").map_err(io)?;
    let mut reasons = BTreeMap::new();
    each_payment(ctx, &batch.id, None, |p| {
        bar.inc(1);
        if let Some(r) = &p.reason {
            *reasons.entry(r.clone()).or_insert(0u64) += 1;
        }
        writeln!(out, "{}", result_row(p))
    })
    .await?;
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(reasons)
}

/// Prints every outcome: CSV rows, or with `--json` one JSON array (written
/// as it arrives, so 100,000 outcomes are never all in memory).
pub async fn payments(ctx: &Ctx, id: &str, status: Option<&str>) -> Result<Outcome, Failure> {
    let json = ctx.out.is_json();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut first = true;
    let mut rejected = false;
    let header = if json { "[" } else { "line,id,status,reason\n" };
    if write!(out, "{header}").is_err() {
        return Ok(Outcome::Ok); // stdout closed: nobody is reading
    }
    let result = each_payment(ctx, id, status, |p| {
        rejected |= p.status == "rejected";
        if json {
            let sep = if first { "" } else { "," };
            first = false;
            write!(out, "{sep}{}", serde_json::to_string(p).unwrap_or_default())
        } else {
            writeln!(out, "{}", result_row(p))
        }
    })
    .await;
    if json {
        let _ = writeln!(out, "]");
    }
    let _ = out.flush();
    result?;
    Ok(if rejected {
        Outcome::SomeRejected
    } else {
        Outcome::Ok
    })
}
