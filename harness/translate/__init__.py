"""The neutral request and its translation to Chat Completions and Responses kwargs (pure)."""
