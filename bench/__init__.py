"""zjobs benchmarks: `zjobs bench` / `python -m bench`. Never part of the test run."""
