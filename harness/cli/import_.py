"""``harness import batch|finetune|otel``: traffic into a scenario file, with an import report.

The work is :func:`harness.importers.build.import_file` over the format's reader; this module
parses the arguments and prints the report.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from harness.errors import HarnessError

__all__ = ["add_arguments", "run"]


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {exc}") from None
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", type=Path, metavar="SOURCE", help="the file to import")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="scenario file to write (with --group-by: a directory, one NAME.yaml per group)",
    )
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
        "--sample",
        type=int,
        metavar="N",
        help="keep a seeded random sample of N requests (counted in the report)",
    )
    p.add_argument(
        "--stratify",
        default="",
        metavar="KEY,...",
        help="with --sample: share N between strata of model, tools, stream and metadata.KEY "
        "values in proportion",
    )
    p.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    p.add_argument(
        "--group-by",
        metavar="KEY",
        help="system-prompt, model or metadata.KEY: one scenario per group in the --out directory",
    )
    p.add_argument(
        "--defaults",
        type=Path,
        metavar="FILE",
        help="YAML/JSON mapping of chat parameters (model, response_format, stream, tools, "
        "temperature, …) for what a request does not state (formats that cannot carry them)",
    )


def run(args: argparse.Namespace) -> int:
    from harness.importers.build import (
        ImportOptions,
        build_groups,
        import_file,
        parse_param_list,
        write_groups,
    )
    from harness.importers.formats import load_defaults, open_source
    from harness.importers.sample import parse_group_by, parse_stratify
    from harness.translate.convert import UNMAPPABLE_CHAT_PARAMS

    fmt: str = args.import_command
    source: Path = args.source
    stratify = parse_stratify(args.stratify)
    if stratify and args.sample is None:
        raise HarnessError("--stratify: stratifies a sample — add --sample N")
    group_by = parse_group_by(args.group_by) if args.group_by is not None else None
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
        sample=args.sample,
        stratify=stratify,
        seed=args.seed,
        group_by=group_by,
    )
    if group_by is not None:
        grouped = build_groups(items, options, source=str(source), fmt=fmt, not_carried=not_carried)
        notes = write_groups(grouped, out, report_path=args.report)
        for line in [*grouped.lines_text(), *notes]:
            print(line)
        for name in grouped.scenarios:
            print(out / f"{name}.yaml")
        return 0
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
