"""Production shadow mode: mirror live Chat Completions calls to Responses, and canary routing."""
