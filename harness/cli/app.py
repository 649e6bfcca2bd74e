"""The ``harness`` command: the parser, built from one module per command, and error handling.

Each command module (``harness.cli.<command>``) has ``add_arguments(p)`` and ``run(args) -> int``
and holds all of that command's terminal output. What ``harness --help`` and ``harness COMMAND
--help`` say about a command is its row in :data:`COMMANDS`: registering a command is written
once, and the command list reads as one page. The modules are light: building the parser loads
no SDK, numpy, rich or pydantic; a command imports its work when it runs, so ``harness
analyze``, ``report``, ``gate`` and ``compare`` never load ``openai`` or ``httpx2``. Anything a
user can get wrong raises :class:`harness.errors.HarnessError`, printed as one line with exit
status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from harness import __version__
from harness.cli import (
    analyze,
    baseline,
    cassettes,
    compare,
    emulator,
    export,
    export_batch,
    gate,
    history,
    import_,
    plan,
    probe,
    record,
    report,
    run,
    shadow,
    validate,
)
from harness.cli.common import err
from harness.errors import HarnessError, ScenarioError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


class CommandModule(Protocol):
    """What a ``harness.cli.<command>`` module provides."""

    def add_arguments(self, p: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


@dataclass(frozen=True)
class Subcommand:
    """A command's one sub-command (``baseline save``), spelt as a sub-command so that others
    can join without changing the command line; the module's options are the sub-command's."""

    name: str
    metavar: str
    help: str
    description: str | None = None
    #: the sub-command's own options, where they are not the module's (``import stored``)
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None


@dataclass(frozen=True)
class Command:
    """One ``harness`` command: its name, the module holding its options and work, and its help
    (``help`` is its line in ``harness --help``, ``description`` heads ``harness NAME --help``)."""

    name: str
    module: CommandModule
    help: str
    description: str
    subcommand: Subcommand | None = None
    #: further sub-commands sharing the module (``import finetune`` beside ``import batch``)
    also: tuple[Subcommand, ...] = ()


#: the commands in the order ``harness --help`` lists them
COMMANDS: tuple[Command, ...] = (
    Command(
        "validate",
        validate,
        help="check scenario files",
        description="Check scenario files (or every *.yaml/*.yml under a directory). Prints "
        "one line per problem as 'file:line: field.path: what is wrong — how to fix'. "
        "Exit 0 when all are valid, 2 otherwise.",
    ),
    Command(
        "plan",
        plan,
        help="show the requests a run would send (dry run)",
        description="Dry run: list every request a run of SCENARIO would send, in send order. "
        "Run-time values (assistant replies, tool call ids, previous_response_id) are shown as "
        'placeholders such as "<response of turn 1>". Nothing is sent.',
    ),
    Command(
        "emulator",
        emulator,
        help="serve the OpenAI-compatible emulator (not OpenAI)",
        description="Serve an emulator of OpenAI's Chat Completions and Responses APIs "
        "(caching rules, SSE streams, stored responses, latency and fault profiles). Every "
        "reply carries an 'x-emulator' header. Point the SDK at http://HOST:PORT/v1.",
    ),
    Command(
        "run",
        run,
        help="run scenarios against both APIs and record observations",
        description="Send every planned request of SCENARIO(s) to the target and record one "
        "observation per request in runs/<run-id>/observations.jsonl. Default target: the "
        "built-in emulator (not OpenAI) with the 'parity' profile, in its own process. "
        "Exit 0 when the run completed (failed requests are data), 2 for bad input, "
        "3 when it stopped at an error no retry can fix (401, 403, an unknown model, no "
        "quota: the run stops at the first one; a missing endpoint stops its arm only), "
        "130 when interrupted (in both cases what was recorded is kept; continue with "
        "--resume).",
    ),
    Command(
        "probe",
        probe,
        help="find what a target serves, and whether it shares its prompt cache across APIs",
        description="capabilities: about 22 small requests (~4,400 input tokens in all) find "
        "what the target serves — each endpoint, streaming, sequence_number, usage and "
        "cached_tokens, store and previous_response_id, json_schema, tools, images, the "
        "Conversations API — and print a table (`harness run` does the same once per run and "
        "refuses arms the target cannot serve). cache-sharing: send a fresh 1,024+-token "
        "prompt to one API, then the same prompt to the other (both orders), and report "
        "whether the second API found it cached — i.e. whether the target keeps one prompt "
        "cache for both APIs.",
    ),
    Command(
        "analyze",
        analyze,
        help="turn a run's observations into summary.json",
        description="Analyse RUN_DIR (meta.json + observations.jsonl): latency percentiles with "
        "bootstrap CIs, cold vs warm, caching, cost, output similarity against the A/A noise "
        "floor, and the migration guide's claims. Writes RUN_DIR/summary.json, prints its path "
        "and a short table. Exit 0, or 2 for bad input.",
    ),
    Command(
        "report",
        report,
        help="render report.html, summary.md and junit.xml for a run",
        description="Render RUN_DIR's saved observations and summary into one self-contained "
        "report.html (verdict, arms, charts, claims, per-prompt diffs, errors), summary.md (for "
        "PR comments and $GITHUB_STEP_SUMMARY) and junit.xml (one case per scenario × "
        "comparison). Never sends a request; analyses the run first if it has no summary.json. "
        "Prints the three paths. Exit 0, or 2 for bad input.",
    ),
    Command(
        "compare",
        compare,
        help="compare two runs (before/after a change, or against a baseline run)",
        description="Compare RUN_A (candidate) with RUN_B (baseline), arm by arm: latency, "
        "cost, caching and error ratios A/B with 95 % intervals (paired by prompt × turn × "
        "repeat, widened by the run-to-run spread). Writes compare.html and compare.md and "
        "prints the HTML path. Exit 0, or 2.",
    ),
    Command(
        "cassettes",
        cassettes,
        help="inspect recorded cassettes",
        description="Commands on cassettes recorded with 'harness run --record DIR'.",
        subcommand=Subcommand(
            "check",
            metavar="COMMAND",
            help="list unused, missing and stale interactions",
            description="Replay every scenario of --scenarios offline against its cassette in DIR "
            "and list, per cassette: missing interactions (requests with no recording, or no "
            "cassette), unused ones (recorded, never asked for) and staleness (the scenario "
            "changed since recording). Exit 0 when all are clean, 1 if anything is listed, 2 for "
            "bad input.",
        ),
    ),
    Command(
        "gate",
        gate,
        help="pass/fail a run on its gates and against a baseline (for CI)",
        description="Decide RUN_DIR's gates (the scenario files' gates:, or --config) and, with "
        "--baseline, its regressions against a baseline run, using the analysis' 95 % "
        "intervals: a gate fails only when the interval is wholly on the wrong side of its "
        "threshold; straddling is 'inconclusive' (passes, with a warning). Against a baseline "
        "(paired by prompt × turn × repeat, with the run-to-run spread measured from a "
        "several-run baseline or assumed), an arm's TTFT/total p50, cost, cache-hit ratio or "
        "error rate fails when the whole interval is worse than the tolerance (default 10 %; "
        "errors +2 points), and a value the baseline has and the run lacks fails. Appends gate "
        "cases to "
        "reports/<run-id>/junit.xml; under GitHub Actions also prints ::error annotations and "
        "writes the step summary. Exit 0 pass, 1 a gate failed, 2 bad input (e.g. no such "
        "baseline). See docs/ci.md.",
    ),
    Command(
        "baseline",
        baseline,
        help="save a run as a named baseline for 'harness gate --baseline'",
        description="Baselines are runs that later runs are compared with: a copy of "
        "summary.json plus the latency samples a between-run bootstrap needs, in "
        "baselines/NAME.json (small enough to commit).",
        subcommand=Subcommand(
            "save",
            metavar="COMMAND",
            help="write baselines/NAME.json from one run or several runs",
            description="Write baselines/NAME.json from RUN_DIR (replacing an older one of that "
            "name); prints its path. Give several runs of the same scenarios (RUN_DIR RUN_DIR…) "
            "and the gate measures the run-to-run spread from them instead of assuming it. "
            "--from-history last:N takes the N most recent runs from the run history instead "
            "(see `harness history`). Exit 0, or 2 for bad input.",
        ),
    ),
    Command(
        "history",
        history,
        help="trend tables of past runs from the run history (DuckDB)",
        description="Print trend tables from the run history that `harness run` and `harness "
        "analyze` record (per-run Parquet files in history/ beside the runs directory, that "
        "DuckDB reads; "
        "--history or $HARNESS_HISTORY point elsewhere, e.g. shared storage). One table per "
        "scenario, target and comparison, one row per run, oldest first: TTFT p50 ratio, cost "
        "ratio, cache share and error rate of each arm, with 95 % intervals (choose with "
        "--metric). Exit 0, or 2 for bad input (no history there, a damaged file, a history "
        "written by a newer harness). See docs/history.md.",
    ),
    Command(
        "shadow",
        shadow,
        help="production shadow runs (harness.shadow.client.ShadowClient)",
        description="Work with the run directory of a production shadow run: live processes "
        "write one shard each (observations-<host>-<pid>-<n>.jsonl). 'merge' concatenates them "
        "into observations.jsonl (atomically; only when they changed) and sums the per-process "
        "counters into shadow_stats.json. 'harness analyze' merges by itself. Exit 0, or 2.",
        subcommand=Subcommand(
            "merge",
            metavar="ACTION",
            help="merge shard files into observations.jsonl",
        ),
    ),
    Command(
        "import",
        import_,
        help="turn real traffic (request logs, fine-tuning files, traces, stored completions) "
        "into a scenario file",
        description="Import Chat Completions requests into one scenario: identical requests "
        "merge into a prompt with weight, the most common model, system prompt, tools and "
        "output schema are written once, stream follows the source, and secrets and personal "
        "data are redacted before anything is written. Requests that cannot be expressed on the "
        "Responses API are listed with their line and reason (terminal and --report), never "
        "dropped silently. Exit 0, or 2 for bad input (nothing written).",
        subcommand=Subcommand(
            "batch",
            metavar="FORMAT",
            help='OpenAI Batch API input, {"body": …} lines or bare request bodies',
            description="Read SOURCE one line at a time: Batch API input lines (url "
            '/v1/chat/completions or /v1/responses), lines holding {"body": {…}}, or bare '
            "Chat Completions or Responses request bodies. A malformed line, another url or a "
            "body that is neither request stops the import (exit 2, nothing written) unless "
            "--skip-bad.",
        ),
        also=(
            Subcommand(
                "finetune",
                metavar="FORMAT",
                help="fine-tuning chat JSONL (the last assistant message is the reference)",
                description="Read SOURCE one example per line ({messages, tools, "
                "parallel_tool_calls}): all messages but the last are the request, the final "
                "assistant message its reference. The model, output format, stream and sampling "
                "parameters are not in the format: the report names them and --defaults FILE "
                "supplies them (model is required).",
            ),
            Subcommand(
                "otel",
                metavar="FORMAT",
                help="OpenTelemetry GenAI traces/logs (OTLP/JSON), three dialects",
                description="Read OTLP/JSON (resourceSpans and/or resourceLogs; one document "
                "or one per line): semantic conventions >= 1.37 (gen_ai.input.messages, "
                "gen_ai.output.messages, gen_ai.system_instructions, gen_ai.tool.definitions), "
                "per-message events (gen_ai.user.message, …, gen_ai.choice) as span events or "
                "log records joined by trace and span id, and OpenLLMetry's gen_ai.prompt.N.* "
                "with llm.request.functions.N.*. The output message is the reference. What "
                "traces do not record (response_format, stream, …) is named in the report and "
                "taken from --defaults FILE; spans without content are listed, not imported.",
            ),
            Subcommand(
                "stored",
                metavar="FORMAT",
                help="OpenAI stored completions (store: true), pulled from --target via the SDK",
                description="List the stored chat completions of --target (chat.completions.list, "
                "filtered by --metadata KEY=VALUE and --model, oldest first, at most --limit N) "
                "and read each one's messages (chat.completions.messages.list): the messages "
                "are the request, the stored reply its reference. The API returns no tools, "
                "output format, stream or sampling parameters: the report names them and "
                "--defaults FILE supplies them. The key comes from the environment as for "
                "harness run and is never printed. Exit 2 with one line for an unreachable "
                "target, a refused key or no matching completion.",
                add_arguments=import_.add_stored_arguments,
            ),
        ),
    ),
    Command(
        "record",
        record,
        help="run an app and record its OpenAI calls as Batch API input (for import batch)",
        description="Run COMMAND (after --) with recording on: every Python process it starts "
        "appends each chat.completions.create request, as the app sent it (stream included), "
        'to FILE as one Batch API input line ({"custom_id", "method": "POST", "url": '
        '"/v1/chat/completions", "body"}; responses.create as url /v1/responses). The calls '
        "themselves go through unchanged: same replies, no extra request. No code change: "
        "harness/shadow/boot is put first on PYTHONPATH and its sitecustomize switches "
        "recording on as the app loads the SDK's chat or responses module (in code: "
        'harness.shadow.record(OpenAI(), "calls.jsonl")). API keys travel in headers and never '
        "reach FILE; message content is written as sent — 'harness import batch FILE' scrubs "
        "secrets and personal data before writing a scenario. Exit: the command's own status, "
        "or 2 for bad input (FILE not writable, no command).",
    ),
    Command(
        "export",
        export_batch,
        help="write a scenario as OpenAI Batch API input (run the comparison through Batch)",
        description="Commands that write a scenario in another tool's format.",
        subcommand=Subcommand(
            "batch",
            metavar="FORMAT",
            help="Batch API input JSONL of each prompt's first request",
            description="Write the first planned request of every prompt of SCENARIO as Batch "
            'API input lines ({"custom_id", "method": "POST", "url", "body"}) for '
            "/v1/responses, /v1/chat/completions or both (two files), translated as a run "
            "would send them, with stream false (the Batch API does not stream) and no cache "
            "nonce; each body is checked against the OpenAPI spec first. A prompt of weight W "
            "is W lines unless --once. Later turns depend on the replies and are not "
            "written. Prints the files. Exit 0, or 2 for bad input (nothing written).",
        ),
    ),
    Command(
        "export-benchmark",
        export,
        help="export a run's latencies as pytest-benchmark JSON",
        description="Export a run's latencies as pytest-benchmark JSON (one benchmark per "
        "scenario × arm × latency, rounds = requests, seconds), for 'pytest-benchmark "
        "compare'. Exit 0, or 2 for bad input.",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The ``harness`` argument parser (every command's options and help)."""
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Shadow Harness: run the same prompts against OpenAI's Chat Completions "
        "and Responses APIs and compare latency (cold and warm), caching, cost and output "
        "similarity. Offline by default: the built-in emulator (not OpenAI) or recorded "
        "cassettes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.description)
        if command.subcommand is not None:
            actions = p.add_subparsers(
                dest=f"{command.name}_command", metavar=command.subcommand.metavar, required=True
            )
            for each in (command.subcommand, *command.also):
                q = actions.add_parser(each.name, help=each.help, description=each.description)
                (each.add_arguments or command.module.add_arguments)(q)
                q.set_defaults(handler=command.module.run)
            continue
        command.module.add_arguments(p)
        p.set_defaults(handler=command.module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command; a user error is one line on stderr and its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ScenarioError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return exc.exit_code
    except HarnessError as exc:
        err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err("interrupted")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
