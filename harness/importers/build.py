"""Chat request bodies → one scenario (prompts with ``weight``, shared keys) and an import report.

Each body is scrubbed, parsed by :func:`harness.translate.from_chat.neutral_from_chat_kwargs`
(the parser shadow mode uses) and checked by both translators. What cannot be expressed on the
Responses API is listed in the report with its line and reason, never dropped silently;
``drop_unsupported`` parameters are removed instead and the change recorded. Identical requests
merge into one prompt whose ``weight`` counts them. The most common model, system prompt, tools
and output schema, and parameters every prompt shares, are written once at the top level.
``stream`` is what the source sent (false when absent: Chat's default); ``store: true`` is kept
only with ``keep_store``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import HarnessError, ScenarioError, TranslationError
from harness.importers.batch import INSTRUCTIONS_ROLE
from harness.importers.sample import GroupNames, Sampler, SampleReport, group_key
from harness.importers.scrub import Scrubber
from harness.importers.source import BadLine, SourceItem, SourceRequest, Unusable
from harness.translate.convert import UNMAPPABLE_CHAT_PARAMS, to_chat_kwargs, to_responses_kwargs
from harness.translate.from_chat import neutral_from_chat_kwargs
from harness.translate.request import (
    JsonSchemaFormat,
    Message,
    NeutralRequest,
    Part,
    TextPart,
)

__all__ = [
    "IMPORT_REPORT_VERSION",
    "GroupedImport",
    "ImportOptions",
    "ImportReport",
    "ImportResult",
    "LineNote",
    "build_groups",
    "build_scenario",
    "import_file",
    "parse_param_list",
    "write_groups",
    "write_import",
]

IMPORT_REPORT_VERSION = 1
#: what a format's "lines" are, where they are not lines of a file
_UNITS = {"otel": "GenAI spans", "stored": "stored completions"}


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImportOptions(_Record):
    """How to import (``harness import`` options)."""

    name: str = Field(description="scenario name (a slug)")
    keep_store: bool = False
    drop_unsupported: tuple[str, ...] = ()
    scrub: tuple[str, ...] = Field(default=(), description="extra regular expressions to scrub")
    skip_bad: bool = False
    defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="chat parameters (model included) for what a request does not state",
    )
    sample: int | None = Field(None, description="keep this many requests (seeded sample)")
    stratify: tuple[str, ...] = Field((), description="sample in proportion within these strata")
    seed: int = 0
    group_by: str | None = Field(
        None, description="system-prompt, model or metadata.KEY: one scenario per group"
    )


class LineNote(_Record):
    """One request of the source and what happened to it."""

    line: int
    reason: str


class ImportReport(_Record):
    """What an import did with every line (written by ``--report FILE``)."""

    schema_version: int = IMPORT_REPORT_VERSION
    source: str
    format: str
    lines: int = Field(
        description="non-blank lines read (GenAI spans for otel, completions for stored)"
    )
    requests: int = Field(description="lines holding a chat request")
    imported_requests: int = Field(description="requests the scenario holds (sum of weights)")
    prompts: int
    merged: int = Field(description="requests merged into an identical earlier one")
    not_imported: list[LineNote] = Field(description="requests left out, with the reason")
    changed: list[LineNote] = Field(description="requests imported with a change")
    bad_lines: list[LineNote] = Field(description="lines skipped with --skip-bad")
    scrubbed: dict[str, int] = Field(description="values redacted, by kind")
    shared: list[str] = Field(description="keys written once at the top level")
    not_carried: dict[str, str] = Field(
        default_factory=dict, description="request fields the format cannot carry, and why"
    )
    from_defaults: list[str] = Field(
        default_factory=list, description="fields taken from --defaults where a request lacked them"
    )
    sample: SampleReport | None = Field(None, description="what --sample kept, per stratum")

    def lines_text(self) -> list[str]:
        """The report for the terminal, one line each."""
        unit = _UNITS.get(self.format, "lines")
        read = f"{self.lines} {unit}, " if self.lines else ""
        out = [
            f"{self.source}: {read}{self.requests} requests → {self.prompts} "
            f"prompts ({self.imported_requests} requests with weights, {self.merged} merged "
            f"duplicates)"
        ]
        if self.sample is not None:
            out.append(self.sample.text())
        out += [f"{self.source}:{n.line}: not imported: {n.reason}" for n in self.not_imported]
        out += [f"{self.source}:{n.line}: changed: {n.reason}" for n in self.changed]
        out += [f"{self.source}:{n.line}: bad line skipped: {n.reason}" for n in self.bad_lines]
        if self.scrubbed:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.scrubbed.items()))
            out.append(f"scrubbed: {kinds}")
        if self.shared:
            out.append("shared at the top level: " + ", ".join(self.shared))
        if self.not_carried:
            out.append(
                f"not carried by {self.format}: "
                + "; ".join(f"{k} ({why})" for k, why in self.not_carried.items())
            )
        # what --defaults could fill (the role of Responses instructions it cannot)
        if set(self.not_carried) - set(INSTRUCTIONS_ROLE) or self.from_defaults:
            taken = ", ".join(self.from_defaults) or "none (pass --defaults FILE to set them)"
            out.append(f"taken from --defaults: {taken}")
        return out


class ImportResult(_Record):
    scenario: dict[str, Any]
    report: ImportReport


class GroupedImport(_Record):
    """An import with ``--group-by``: one report per group (written by ``--report FILE``)."""

    schema_version: int = IMPORT_REPORT_VERSION
    source: str
    format: str
    group_by: str
    lines: int = Field(description="non-blank lines read (GenAI spans for otel)")
    groups: dict[str, ImportReport] = Field(description="group name (its file's stem) → report")
    empty_groups: dict[str, list[LineNote]] = Field(
        description="groups none of whose requests could be imported (no file), with why"
    )
    bad_lines: list[LineNote] = Field(description="lines skipped with --skip-bad")
    not_imported: list[LineNote] = Field(description="requests left out before grouping")
    sample: SampleReport | None = None
    scenarios: dict[str, dict[str, Any]] = Field(default_factory=dict, exclude=True)

    def lines_text(self) -> list[str]:
        """The report for the terminal, one line each."""
        unit = _UNITS.get(self.format, "lines")
        out = [
            f"{self.source}: {self.lines} {unit} → {len(self.groups)} scenarios by {self.group_by}"
        ]
        if self.sample is not None:
            out.append(self.sample.text())
        for name, report in self.groups.items():
            out += [f"[{name}] {line}" for line in report.lines_text()]
        for name, notes in self.empty_groups.items():
            out += [f"[{name}] {self.source}:{n.line}: not imported: {n.reason}" for n in notes]
        out += [f"{self.source}:{n.line}: not imported: {n.reason}" for n in self.not_imported]
        out += [f"{self.source}:{n.line}: bad line skipped: {n.reason}" for n in self.bad_lines]
        return out


# --------------------------------------------------------------------------- one request


def _content(content: str | list[Part] | None) -> Any:
    if content is None or isinstance(content, str):
        return content
    return [
        {"text": p.text} if isinstance(p, TextPart) else {"image_url": p.url, "detail": p.detail}
        for p in content
    ]


def _message(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": msg.role}
    content = _content(msg.content)
    # an assistant turn that only calls tools often logs content "" (both APIs omit it)
    if content is not None and not (msg.tool_calls and content == ""):
        out["content"] = content
    if msg.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in msg.tool_calls
        ]
    if msg.tool_call_id is not None:
        out["tool_call_id"] = msg.tool_call_id
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(value: Any) -> bytes:
    """A 16-byte key for a value: the maps of seen bodies hold this, not the body's text,
    so memory grows with distinct prompts only by what the prompts themselves hold."""
    return hashlib.blake2b(_canonical(value).encode("utf-8"), digest_size=16).digest()


def _prompt_fields(req: NeutralRequest, store: bool | None) -> dict[str, Any]:
    """The request as prompt keys (no id yet); ``_instructions`` and ``model`` are hoisted."""
    messages = list(req.messages)
    fields: dict[str, Any] = {"model": req.model}
    first = messages[0] if messages else None
    if (
        first is not None
        and first.role in ("system", "developer")
        and isinstance(first.content, str)
        and first.content.strip()
    ):
        fields["_instructions"] = (first.role, first.content)
        messages = messages[1:]
    # with tools, input: would make the run answer the model's calls with canned results
    # (more requests than the log holds); messages: is measured on its one request
    if len(messages) == 1 and messages[0].role == "user" and messages[0].content and not req.tools:
        fields["input"] = _content(messages[0].content)
    else:
        fields["messages"] = [_message(m) for m in messages]
    if req.tools:
        fields["tools"] = [
            {
                "name": t.name,
                **({"description": t.description} if t.description is not None else {}),
                "parameters": t.parameters,
                "strict": t.strict,
            }
            for t in req.tools
        ]
    if req.tool_choice is not None:
        fields["tool_choice"] = req.tool_choice
    fmt = req.output_format
    if isinstance(fmt, JsonSchemaFormat):
        fields["output_schema"] = {
            "name": fmt.name,
            "schema": fmt.schema_,
            "strict": fmt.strict,
            **({"description": fmt.description} if fmt.description is not None else {}),
        }
    elif fmt is not None:
        fields["output"] = "json_object"
    params = req.params.model_dump(exclude_none=True)
    if store:
        params["store"] = True
    fields["params"] = params
    return fields


def _one(item: SourceRequest, options: ImportOptions) -> tuple[dict[str, Any], list[str]]:
    """A scrubbed body as prompt fields and the changes made (raises TranslationError)."""
    body = item.body
    if not isinstance(body.get("model"), str):
        raise TranslationError(
            "model: the source names no model — pass --defaults FILE with model: NAME"
        )
    changes = [
        f"{name} removed (--drop-unsupported)" for name in options.drop_unsupported if name in body
    ]
    store = body.get("store") is True
    if store and not options.keep_store:
        changes.append(
            "store: true not kept (the provider would store imported traffic; "
            "pass --keep-store to keep it)"
        )
    req = _parse(body, options.drop_unsupported)
    # both translators' checks (tool pairing, minimum tokens, models one API lacks…)
    to_chat_kwargs(req)
    to_responses_kwargs(req)
    fields = _prompt_fields(req, store and options.keep_store)
    _check_prompt(fields)
    return fields, changes


def _parse(body: dict[str, Any], drop: Sequence[str]) -> NeutralRequest:
    """The neutral request; when Chat-only parameters stop it, the error names all of them
    (so one --drop-unsupported list is enough), not just the first."""
    found: list[str] = []
    ignore = set(drop)
    while True:
        try:
            req = neutral_from_chat_kwargs(body, ignore=ignore)
        except TranslationError as exc:
            text = str(exc).removeprefix("responses: ")
            name = text.partition(":")[0]
            if name not in UNMAPPABLE_CHAT_PARAMS or name in ignore:
                raise TranslationError("; ".join(t.rstrip(".") for t in [*found, text])) from None
            found.append(text)
            ignore.add(name)
            continue
        if found:
            raise TranslationError("; ".join(t.rstrip(".") for t in found))
        return req


def _check_prompt(fields: dict[str, Any]) -> None:
    """The scenario's own rules for one prompt (raises TranslationError with the first)."""
    from harness.scenario.check import data_path, describe_error
    from harness.scenario.models import PromptSpec
    from harness.scenario.yaml_safe import format_path

    data = {k: v for k, v in fields.items() if not k.startswith("_")}
    data["id"] = "p"
    try:
        PromptSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        path, message, fix = describe_error(error, data_path(error["loc"], data))[0]
        raise TranslationError(f"{format_path(path)}: {message} — {fix}") from None


@dataclass(frozen=True)
class _Outcome:
    """What became of one distinct body: prompt fields (and their key), or the reason not."""

    key: bytes = b""
    fields: dict[str, Any] | None = None
    reason: str = ""
    changes: tuple[str, ...] = ()


def _outcome(item: SourceRequest, options: ImportOptions) -> _Outcome:
    try:
        fields, changes = _one(item, options)
    except TranslationError as exc:
        return _Outcome(reason=str(exc).removeprefix("responses: ").removeprefix("chat: "))
    if item.reference is not None:
        fields["reference"] = item.reference
    return _Outcome(_digest(fields), fields, "", tuple(changes))


# --------------------------------------------------------------------------- the scenario


def _most_common(values: Iterable[str]) -> tuple[str | None, int]:
    counts = Counter(values)
    if not counts:
        return None, 0
    value, count = counts.most_common(1)[0]
    return value, count


def _hoist(prompts: list[dict[str, Any]], scenario: dict[str, Any], shared: list[str]) -> None:
    """Write the most common model, instructions, tools and output schema (and parameters every
    prompt shares) once at the top level; prompts keep only what differs."""
    model, _ = _most_common(p["model"] for p in prompts)
    scenario["model"] = model
    shared.append("model")
    for p in prompts:
        if p["model"] == model:
            del p["model"]

    instructions = [p.get("_instructions") for p in prompts]
    # a prompt without instructions cannot opt out of shared ones: share only if all have some
    if all(i is not None for i in instructions):
        text, count = _most_common(_canonical(i) for i in instructions)
        if text is not None and count > 1:
            role, value = json.loads(text)
            scenario[role] = value
            shared.append(role)
            for p in prompts:
                if _canonical(p["_instructions"]) == text:
                    del p["_instructions"]
    for p in prompts:
        if "_instructions" in p:
            role, value = p.pop("_instructions")
            p[role] = value

    tools, count = _most_common(_canonical(p["tools"]) for p in prompts if "tools" in p)
    if tools is not None and count > 1:
        scenario["tools"] = json.loads(tools)
        shared.append("tools")
        for p in prompts:
            if "tools" not in p:
                p["tools"] = []
            elif _canonical(p["tools"]) == tools:
                del p["tools"]

    schema, count = _most_common(
        _canonical(p["output_schema"]) for p in prompts if "output_schema" in p
    )
    if schema is not None and count > 1:
        scenario["output_schema"] = json.loads(schema)
        shared.append("output_schema")
        for p in prompts:
            if "output_schema" in p and _canonical(p["output_schema"]) == schema:
                del p["output_schema"]
            elif "output_schema" not in p and "output" not in p:
                p["output"] = "text"

    keys = set.intersection(*(set(p["params"]) for p in prompts))
    defaults = {
        k: prompts[0]["params"][k]
        for k in sorted(keys)
        if len({_canonical(p["params"][k]) for p in prompts}) == 1
    }
    if defaults:
        scenario["defaults"] = defaults
        shared.extend(f"defaults.{k}" for k in defaults)
    for p in prompts:
        own = {k: v for k, v in p["params"].items() if k not in defaults}
        if own:
            p["params"] = own
        else:
            del p["params"]


_ORDER = (
    "id",
    "weight",
    "model",
    "system",
    "developer",
    "params",
    "messages",
    "input",
    "tools",
    "tool_choice",
    "output_schema",
    "output",
    "reference",
)


def _with_defaults(
    body: dict[str, Any], defaults: dict[str, Any], used: set[str]
) -> dict[str, Any]:
    missing = {k: v for k, v in defaults.items() if k not in body}
    used.update(missing)
    return {**body, **missing} if missing else body


class _Group:
    """The prompts of one scenario as requests arrive (deduplicated into weights)."""

    def __init__(self, options: ImportOptions) -> None:
        self.options = options
        self.unique: dict[bytes, dict[str, Any]] = {}
        self.requests = self.merged = 0
        self.not_imported: list[LineNote] = []
        self.changed: list[LineNote] = []
        self.used_defaults: set[str] = set()
        self._ids: set[str] = set()

    def prompt_id(self, text: str) -> str:
        """A unique prompt id from a (scrubbed) source id: a slug of at most 64 characters;
        ids that scrub or slug alike get ``-2``, ``-3``…"""
        slug = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9._-]+", "-", text))
        base = slug.strip("-._")[:56].strip("-._") or "prompt"
        name, n = base, 1
        while name in self._ids:
            n += 1
            name = f"{base}-{n}"
        self._ids.add(name)
        return name


class _Build:
    """Source items → one scenario per group (one group without ``group_by``)."""

    def __init__(self, options: ImportOptions, *, source: str, fmt: str) -> None:
        self.options, self.source, self.fmt = options, source, fmt
        self.scrubber = Scrubber(options.scrub)
        self.seen: dict[bytes, tuple[_Outcome, Counter[str]]] = {}
        self.groups: dict[str, _Group] = {}
        self.names = GroupNames(options.group_by) if options.group_by else None
        self.lines = 0
        self.bad: list[LineNote] = []
        #: requests without a body (no group to put them in under group_by)
        self.unusable: list[LineNote] = []

    def group(self, body: dict[str, Any]) -> _Group:
        name = ""
        if self.names is not None:
            group_by = self.names.group_by
            name = self.names.name(
                group_key(body, self.options.defaults, group_by), clean=self.note
            )
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = _Group(self.options)
        return group

    def note(self, text: str) -> str:
        """``text`` (source text a file name or report note shows) scrubbed, not counted: the
        counts are of the values in the bodies, which are scrubbed (and counted) themselves."""
        return self.scrubber.quiet(text)

    def add(self, item: SourceItem) -> None:
        options = self.options
        self.lines += 1
        if isinstance(item, BadLine):
            if not options.skip_bad:
                raise HarnessError(
                    f"{self.source}:{item.line}: {self.note(item.problem)} — fix the line or "
                    "pass --skip-bad"
                )
            self.bad.append(LineNote(line=item.line, reason=self.note(item.problem)))
            return
        if isinstance(item, Unusable):
            self.unusable.append(LineNote(line=item.line, reason=self.note(item.reason)))
            return
        used: set[str] = set()
        body = _with_defaults(item.body, options.defaults, used)
        group = self.group(body)
        group.requests += 1
        group.used_defaults |= used
        # a body seen before is neither scrubbed nor parsed again (most of a log's lines):
        # same outcome, same prompt, the same redactions counted again
        seen_key = _digest([body, item.reference])
        hit = self.seen.get(seen_key)
        if hit is None:
            before = self.scrubber.counts.copy()
            clean = SourceRequest(
                item.line,
                self.scrubber.value(body),
                self.scrubber.text(item.reference) if item.reference is not None else None,
            )
            hit = self.seen[seen_key] = (_outcome(clean, options), self.scrubber.counts - before)
        else:
            self.scrubber.counts.update(hit[1])
        outcome = hit[0]
        # several requests share a line in some formats (the id says which one); a batch line
        # is named by its custom_id. Both are source text: scrubbed like the bodies
        label = item.label or item.id
        where = ""
        # scrubbed only when a note shows it (most requests get none)
        if label is not None and (
            outcome.fields is None or outcome.changes or item.changes or item.gaps
        ):
            where = f"{self.note(label)}: "
        if outcome.fields is None:
            group.not_imported.append(LineNote(line=item.line, reason=where + outcome.reason))
            return
        group.changed.extend(
            LineNote(line=item.line, reason=where + c)
            for c in [*(self.note(c) for c in item.changes), *outcome.changes]
        )
        group.changed.extend(
            LineNote(line=item.line, reason=where + self.note(note))
            for field, note in item.gaps
            if field not in body
        )
        key, fields = outcome.key, outcome.fields
        if key in group.unique:
            group.unique[key]["weight"] += 1
            group.merged += 1
        else:
            prompt_id = group.prompt_id(self.note(item.id) if item.id else f"line-{item.line}")
            group.unique[key] = {"id": prompt_id, "weight": 1, **fields}

    def result(
        self,
        name: str,
        group: _Group,
        *,
        lines: int,
        bad: list[LineNote],
        unusable: list[LineNote],
        not_carried: dict[str, str] | None,
        sample: SampleReport | None,
    ) -> ImportResult:
        prompts = list(group.unique.values())
        scenario: dict[str, Any] = {"version": 1, "name": name}
        shared: list[str] = []
        _hoist(prompts, scenario, shared)
        ordered = []
        for p in prompts:
            if p["weight"] == 1:
                del p["weight"]
            ordered.append({k: p[k] for k in _ORDER if k in p})
        scenario["repeats"] = 1
        scenario["prompts"] = ordered
        not_imported = sorted([*unusable, *group.not_imported], key=lambda n: n.line)
        report = ImportReport(
            source=self.source,
            format=self.fmt,
            lines=lines,
            requests=group.requests + len(unusable),
            imported_requests=group.requests - len(group.not_imported),
            prompts=len(prompts),
            merged=group.merged,
            not_imported=not_imported,
            changed=group.changed,
            bad_lines=bad,
            scrubbed=dict(self.scrubber.counts),
            shared=shared,
            not_carried=dict(not_carried or {}),
            from_defaults=sorted(group.used_defaults),
            sample=sample,
        )
        return ImportResult(scenario=scenario, report=report)

    def fail_if_empty(self) -> None:
        if any(g.unique for g in self.groups.values()):
            return
        # nothing is written, so the report is not printed: the error names the first reason
        not_imported = sorted(
            [*self.unusable, *(n for g in self.groups.values() for n in g.not_imported)],
            key=lambda n: n.line,
        )
        first = (not_imported or self.bad)[0] if not_imported or self.bad else None
        raise HarnessError(
            f"{self.source}: no request could be imported ({len(not_imported)} not imported, "
            f"{len(self.bad)} bad lines; line {first.line}: {first.reason})"
            if first is not None
            else f"{self.source}: holds no chat requests — give a file of chat requests "
            f"({self.fmt} format)"
        )


def _run(
    items: Iterable[SourceItem], options: ImportOptions, *, source: str, fmt: str
) -> tuple[_Build, SampleReport | None]:
    build = _Build(options, source=source, fmt=fmt)
    sampler = None
    if options.sample is not None:
        sampler = Sampler(
            options.sample, options.stratify, options.seed, options.defaults, clean=build.note
        )
        items = sampler.sample(items)
    for item in items:
        build.add(item)
    build.fail_if_empty()
    sample = sampler.report if sampler is not None else None
    if sample is not None:
        # requests left out by the sample were read too: the line count is the source's
        build.lines += sample.population - sample.kept
    return build, sample


def build_scenario(
    items: Iterable[SourceItem],
    options: ImportOptions,
    *,
    source: str,
    fmt: str,
    not_carried: dict[str, str] | None = None,
) -> ImportResult:
    """One scenario from a stream of source items (raises HarnessError on a bad line unless
    ``options.skip_bad``, naming the source and line). ``not_carried`` names the request fields
    the format cannot hold (for the report); ``options.defaults`` fills them where absent."""
    if options.group_by is not None:
        raise HarnessError("build_scenario makes one scenario: use build_groups for group_by")
    build, sample = _run(items, options, source=source, fmt=fmt)
    (group,) = build.groups.values()
    return build.result(
        options.name,
        group,
        lines=build.lines,
        bad=build.bad,
        unusable=build.unusable,
        not_carried=not_carried,
        sample=sample,
    )


def build_groups(
    items: Iterable[SourceItem],
    options: ImportOptions,
    *,
    source: str,
    fmt: str,
    not_carried: dict[str, str] | None = None,
) -> GroupedImport:
    """One scenario per ``options.group_by`` group, named by the group (in order of first
    appearance); a group none of whose requests could be imported gets no scenario and is
    listed in ``empty``. Lines that hold no request are the grouped import's own."""
    if options.group_by is None:
        raise HarnessError("build_groups needs group_by")
    build, sample = _run(items, options, source=source, fmt=fmt)
    results: dict[str, ImportResult] = {}
    empty: dict[str, list[LineNote]] = {}
    for name, group in build.groups.items():
        if not group.unique:
            empty[name] = group.not_imported
            continue
        results[name] = build.result(
            name,
            group,
            lines=group.requests,
            bad=[],
            unusable=[],
            not_carried=not_carried,
            sample=None,
        )
    return GroupedImport(
        source=source,
        format=fmt,
        group_by=options.group_by,
        lines=build.lines,
        groups={name: r.report for name, r in results.items()},
        empty_groups=empty,
        bad_lines=build.bad,
        not_imported=build.unusable,
        sample=sample,
        scenarios={name: r.scenario for name, r in results.items()},
    )


def _dump(scenario: dict[str, Any]) -> str:
    return yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True, width=100)


def write_import(result: ImportResult, out: Path, *, report_path: Path | None = None) -> list[str]:
    """Write the scenario (only if it validates, atomically) and the report; returns the
    validation notes. Raises ScenarioError when the written scenario would not validate."""
    from harness.runner.plan import translation_notes, translation_problems
    from harness.scenario.load import load_scenario
    from harness.scenario.yaml_safe import MAX_FILE_BYTES

    text = _dump(result.scenario)
    size = len(text.encode("utf-8"))
    if size > MAX_FILE_BYTES:
        raise HarnessError(
            f"{out}: the imported scenario would be {size:,} bytes "
            f"({len(result.scenario['prompts'])} prompts), over the {MAX_FILE_BYTES:,}-byte "
            "limit of a scenario file — import fewer "
            "requests (--sample N) or split them (--group-by system-prompt|model|metadata.KEY)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".yaml", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            scenario = load_scenario(tmp)
        except ScenarioError as exc:
            raise ScenarioError([p.replace(tmp, str(out)) for p in exc.problems]) from None
        problems = translation_problems(scenario)
        if problems:
            raise HarnessError(f"{out}: the imported scenario does not translate: {problems[0]}")
        notes = translation_notes(scenario)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(result.report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return [n.replace(tmp, str(out)) for n in notes]


def write_groups(
    grouped: GroupedImport, out_dir: Path, *, report_path: Path | None = None
) -> list[str]:
    """Write one scenario per group into ``out_dir`` (``NAME.yaml``) and the report; each
    scenario is validated before any is written, so a failure writes nothing."""
    if out_dir.exists() and not out_dir.is_dir():
        raise HarnessError(f"--out {out_dir}: with --group-by, --out is a directory")
    notes: list[str] = []
    staged = out_dir.parent / f".{out_dir.name}.importing"
    staged.mkdir(parents=True, exist_ok=True)
    try:
        for name, scenario in grouped.scenarios.items():
            result = ImportResult(scenario=scenario, report=grouped.groups[name])
            notes += write_import(result, staged / f"{name}.yaml")
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in grouped.scenarios:
            os.replace(staged / f"{name}.yaml", out_dir / f"{name}.yaml")
    finally:
        for left in staged.glob("*"):
            left.unlink()
        staged.rmdir()
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(grouped.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return [n.replace(str(staged), str(out_dir)) for n in notes]


def import_file(
    items: Iterable[SourceItem],
    out: Path,
    options: ImportOptions,
    *,
    source: str,
    fmt: str,
    report_path: Path | None = None,
    not_carried: dict[str, str] | None = None,
) -> tuple[ImportReport, list[str]]:
    """Build and write a scenario from source items; returns the report and validation notes."""
    result = build_scenario(items, options, source=source, fmt=fmt, not_carried=not_carried)
    notes = write_import(result, out, report_path=report_path)
    return result.report, notes


def parse_param_list(text: str, known: Sequence[str]) -> tuple[str, ...]:
    """``n,seed,stop`` → the names (each must be a Chat parameter the harness knows)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        if name not in known:
            raise HarnessError(
                f"--drop-unsupported {name}: not a Chat parameter without a Responses "
                f"equivalent — use some of: {', '.join(sorted(known))}"
            )
    return names
