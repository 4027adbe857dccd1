//! The `torii` binary: mimalloc as the global allocator, then the command line.
use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() {
    std::process::exit(torii_engine::cli::main());
}
