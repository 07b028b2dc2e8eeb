"""Benchmarks (issue 7): python -m bench.run, python -m bench.scheduling; results in bench/RESULTS.md."""
