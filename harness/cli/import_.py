"""``harness import batch|finetune|otel|stored``: traffic into a scenario file, with an import
report.

The work is :func:`harness.importers.build.import_file` over the format's reader (for
``stored``, the target's stored completions read through the SDK); this module parses the
arguments and prints the report.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.common import add_out_file
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.importers.source import SourceItem

__all__ = ["add_arguments", "add_stored_arguments", "run"]


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {exc}") from None
    return text


def _pair(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, such as app=support")
    return key, value


def _page_size(text: str) -> int:
    from harness.importers.stored import MAX_PAGE

    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number from 1 to {MAX_PAGE}")
    return size


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of 1 or more")
    return n


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the file formats: SOURCE, then the shared import options."""
    p.add_argument("source", type=Path, metavar="SOURCE", help="the file to import")
    _add_import_options(p)


def add_stored_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``import stored``: where and which completions, then the shared options."""
    p.add_argument(
        "--target",
        required=True,
        metavar="URL",
        help="server holding the stored completions: openai, an http(s) URL ending in /v1, or "
        "emulator (a new, empty one); key from HARNESS_TARGET_API_KEY / OPENAI_API_KEY as for "
        "harness run",
    )
    p.add_argument(
        "--metadata",
        action="append",
        type=_pair,
        default=[],
        metavar="KEY=VALUE",
        help="only completions whose metadata has this pair (repeatable: all must match)",
    )
    p.add_argument("--model", help="only completions of this model (also the prompts' model)")
    p.add_argument(
        "--limit", type=_positive, metavar="N", help="import at most N completions (oldest first)"
    )
    p.add_argument(
        "--page-size",
        type=_page_size,
        default=100,
        metavar="N",
        help="completions per list request (1-100, default 100)",
    )
    _add_import_options(p)


def _add_import_options(p: argparse.ArgumentParser) -> None:
    add_out_file(
        p, "scenario file to write (with --group-by: a directory, one NAME.yaml per group)"
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
    stratify = parse_stratify(args.stratify)
    if stratify and args.sample is None:
        raise HarnessError("--stratify: stratifies a sample — add --sample N")
    group_by = parse_group_by(args.group_by) if args.group_by is not None else None
    defaults = load_defaults(args.defaults) if args.defaults is not None else {}
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
    with ExitStack() as stack:
        if fmt == "stored":
            items, not_carried, source = stack.enter_context(_stored_source(args))
        else:
            items, not_carried = open_source(fmt, args.source, defaults)
            source = str(args.source)
        if group_by is not None:
            grouped = build_groups(items, options, source=source, fmt=fmt, not_carried=not_carried)
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
            source=source,
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


@contextmanager
def _stored_source(
    args: argparse.Namespace,
) -> Iterator[tuple[Iterable[SourceItem], dict[str, str], str]]:
    """The target's stored completions (read while the context is open), what they cannot
    carry, and the report's name for them; the API key is used, never shown."""
    import openai

    from harness.importers.stored import StoredQuery, not_carried, read_stored, source_label
    from harness.runner.target import open_target

    query = StoredQuery(
        metadata=dict(args.metadata),
        model=args.model,
        limit=args.limit,
        page_size=args.page_size,
        keep_store=args.keep_store,
    )
    with (
        open_target(args.target, emulator_profile="zero") as target,
        openai.OpenAI(
            base_url=target.base_url, api_key=target.api_key, max_retries=1, timeout=60.0
        ) as client,
    ):
        label = source_label(target.base_url)
        # a new built-in emulator has stored nothing: the one an app used is a URL
        hint = (
            " (--target emulator starts a new, empty emulator: pass the URL of the one the app "
            "stored its completions on)"
            if target.is_emulator
            else ""
        )
        items = read_stored(client, query, label, empty_hint=hint)
        yield items, not_carried(query), label
