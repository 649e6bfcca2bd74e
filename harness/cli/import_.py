"""``harness import batch|finetune|otel``: traffic into a scenario file, with an import report.

The work is :func:`harness.importers.build.import_file` over the format's reader; this module
parses the arguments and prints the report.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

__all__ = ["add_arguments", "run"]


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {exc}") from None
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", type=Path, metavar="SOURCE", help="the file to import")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="scenario file to write")
    p.add_argument("--name", help="scenario name (default: the --out file name)")
    p.add_argument("--report", type=Path, metavar="FILE", help="also write the report as JSON")
    p.add_argument(
        "--keep-store",
        action="store_true",
        help="keep store: true where the source set it (default: never store imported traffic)",
    )
    p.add_argument(
        "--drop-unsupported",
        default="",
        metavar="PARAM,...",
        help="import requests using these Chat-only parameters (n, seed, stop, …) without them "
        "(recorded in the report); without it such requests are listed, not imported",
    )
    p.add_argument(
        "--scrub",
        action="append",
        type=_regex,
        default=[],
        metavar="REGEX",
        help="also redact matches of this regular expression (repeatable)",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="list bad lines in the report instead of stopping at the first one",
    )
    p.add_argument(
        "--defaults",
        type=Path,
        metavar="FILE",
        help="YAML/JSON mapping of chat parameters (model, response_format, stream, tools, "
        "temperature, …) for what a request does not state (formats that cannot carry them)",
    )


def run(args: argparse.Namespace) -> int:
    from harness.importers.build import ImportOptions, import_file, parse_param_list
    from harness.importers.formats import load_defaults, open_source
    from harness.translate.convert import UNMAPPABLE_CHAT_PARAMS

    fmt: str = args.import_command
    source: Path = args.source
    defaults = load_defaults(args.defaults) if args.defaults is not None else {}
    items, not_carried = open_source(fmt, source, defaults)
    out: Path = args.out
    name = args.name or re.sub(r"[^A-Za-z0-9._-]+", "-", out.stem).strip("-.") or "imported"
    options = ImportOptions(
        name=name,
        keep_store=args.keep_store,
        drop_unsupported=parse_param_list(args.drop_unsupported, list(UNMAPPABLE_CHAT_PARAMS)),
        scrub=tuple(args.scrub),
        skip_bad=args.skip_bad,
        defaults=defaults,
    )
    report, notes = import_file(
        items,
        out,
        options,
        source=str(source),
        fmt=fmt,
        report_path=args.report,
        not_carried=not_carried,
    )
    for line in report.lines_text():
        print(line)
    for line in notes:
        print(line)
    print(out)
    return 0
