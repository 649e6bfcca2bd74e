"""Observations → metrics, comparisons with intervals, similarity, cost and claims (no SDK)."""
