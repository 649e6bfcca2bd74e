"""CI gates: gate keys and thresholds, evaluation, baselines, pytest-benchmark export (no SDK)."""
