// `sqlx::migrate!` embeds the migrations at compile time; a migration file added later must
// rebuild the crate, which cargo only knows to do when told to watch the folders.
fn main() {
    println!("cargo:rerun-if-changed=migrations/sqlite");
    println!("cargo:rerun-if-changed=migrations/postgres");
}
