//! Deterministic generators shared by the benchmarks.
