//! `torii-loadtest`: the load generator (filled in by the load-test issue).
fn main() {
    eprintln!("torii-loadtest: not built yet; see issue 7");
    std::process::exit(2);
}
