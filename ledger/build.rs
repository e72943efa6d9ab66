// `sqlx::migrate!` embeds migrations/ at compile time, but cargo does not
// know that: without this, a new migration file is left out of an
// incremental build until some ledger source changes too.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
