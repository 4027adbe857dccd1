//! `torii-bench`: criterion benchmarks only; see `benches/`.
