"""Experiments: a scenario's runs (run.py: the matrix, the checks of the machine), each run's
timeline of measurements and events (timeline.py), what they leave on disk (results.py,
plots.py), the progress display (progress.py), and the benchmark (bench.py)."""
