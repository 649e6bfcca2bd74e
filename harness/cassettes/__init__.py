"""vcrpy cassettes: record a run once, replay it offline with its timing, check staleness."""
