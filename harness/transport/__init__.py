"""Sending one request: the SDK and raw clients, reply parsing, retries, the wire clock."""
