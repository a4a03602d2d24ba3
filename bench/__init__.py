"""Load generator and runner for the performance figures (docs/benchmarks.md)."""
