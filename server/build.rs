//! `sqlx::migrate!` reads the migrations at compile time, and cargo does not know it: without
//! this, a migration added to `migrations/` reached the binary only with the next change to the
//! server's own code.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
