"""Shadow Harness: shadow-test a Chat Completions → Responses migration."""

__version__ = "0.1.0"

#: Label every output carries when the target is not OpenAI itself.
NOT_OPENAI_LABEL = "emulator — not OpenAI"
