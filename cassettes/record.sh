#!/usr/bin/env bash
# Re-record the shipped cassettes from the built-in emulator (not OpenAI), offline.
# Run from the repository root after changing a scenario (harness cassettes check says "stale").
# Repeats are kept small so the directory stays under ~5 MB; seed 1 fixes every cache nonce.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
record() {  # record SCENARIO REPEATS
  python -m harness run "$1" --record cassettes/ --seed 1 --repeats "$2" \
    --emulator-profile parity --emulator-time-scale 0.2 --quiet --out "$out" >/dev/null
}
record scenarios/quickstart.yaml 3
record scenarios/batch_summarization.yaml 2
record scenarios/image_question.yaml 2
record scenarios/structured_extraction.yaml 2
record scenarios/function_calling.yaml 1
record scenarios/support_bot.yaml 1
python -m harness cassettes check cassettes/ --scenarios scenarios/
du -sh cassettes/
