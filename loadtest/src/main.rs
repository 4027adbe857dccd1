//! `torii-loadtest` binary: parses the command line and hands over to [`torii_loadtest::cli`].

fn main() {
    std::process::exit(torii_loadtest::cli::main());
}
