"""Plan a run and execute it against a target: arms, order, pacing, retries, resume."""
