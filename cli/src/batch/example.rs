//! `bankctl batch example`: demo files of any size.

use std::io::{BufWriter, Write};

use shared::money::{Amount, Currency};
use shared::transfer::Reference;

use crate::cli::ExampleArgs;
use crate::error::{Failure, Outcome};
use crate::validate::{self, CSV_HEADER, csv_field};

/// Writes a demo batch file to stdout.
pub fn example(args: &ExampleArgs) -> Result<Outcome, Failure> {
    let currency = Currency::parse(&args.currency)
        .map_err(|e| Failure::invalid(format!("--currency {:?}: {e}", args.currency)))?;
    Amount::parse(&args.amount, currency)
        .map_err(|e| Failure::invalid(format!("--amount {:?}: {e}", args.amount)))?;
    if args.from == args.to {
        return Err(Failure::invalid("--to must differ from --from"));
    }
    if !(1..=validate::LINES_MAX as u64).contains(&args.lines) {
        return Err(Failure::invalid(format!(
            "--lines must be 1 to {}",
            validate::LINES_MAX
        )));
    }
    Reference::parse(&format!("{} {}", args.reference, args.lines))
        .map_err(|e| Failure::invalid(format!("--reference: {e}")))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let write = |out: &mut BufWriter<_>| -> std::io::Result<()> {
        writeln!(out, "{CSV_HEADER}")?;
        for i in 1..=args.lines {
            let reference = csv_field(&format!("{} {i}", args.reference));
            writeln!(
                out,
                "{},{},{},{},{reference}",
                args.from, args.to, args.amount, args.currency
            )?;
        }
        out.flush()
    };
    match write(&mut out) {
        Ok(()) => Ok(Outcome::Ok),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Outcome::Ok),
        Err(e) => Err(Failure::invalid(format!("cannot write: {e}"))),
    }
}
