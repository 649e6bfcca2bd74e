#!/usr/bin/env bash
# Re-record the shipped cassettes from the built-in emulator (not OpenAI), offline.
# Run from the repository root after changing a scenario (harness run --replay refuses a
# cassette that lacks requests of its scenario; harness cassettes check says "stale").
# Profile parity at the emulator's own speed (time scale 1), so a replay shows the latencies a
# live `harness run` against the emulator measures. Repeats give every arm the 10 conversations
# (prompts × repeats) a verdict needs (docs/statistics.md, "Minimum samples"), and no more, to
# keep the cassettes small: quickstart at its own 5 repeats, the others below their scenario's
# (each replay's label says the repeats it was recorded with). Seed 1 fixes every cache nonce.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
record() {  # record SCENARIO REPEATS
  python -m harness run "$1" --record cassettes/ --seed 1 --repeats "$2" \
    --emulator-profile parity --emulator-time-scale 1 --quiet --out "$out" >/dev/null
}
record scenarios/quickstart.yaml 5
record scenarios/batch_summarization.yaml 3
record scenarios/image_question.yaml 5
record scenarios/structured_extraction.yaml 5
record scenarios/function_calling.yaml 5
record scenarios/support_bot.yaml 4
# seven state arms × five requests, each echoing a long system prompt (~1.9 MB a repeat): 2
# repeats rather than the 10 a verdict needs; a replay shows the per-turn figures, not verdicts
record scenarios/agent_tool_loop.yaml 2
python -m harness cassettes check cassettes/ --scenarios scenarios/
du -sh cassettes/
