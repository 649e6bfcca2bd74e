"""Safe YAML loading for scenario files: line numbers, duplicate keys, ``!include``, hard limits.

PyYAML's constructors lose node positions, accept duplicate keys silently and expand aliases
without bound. This module composes the node graph (libyaml when available), then builds plain
Python values itself, recording the line of every key and list item so that validation errors
can say ``file:line``. Hostile input is refused before any expensive work: files larger than
:data:`MAX_FILE_BYTES`, nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_ALIASES`
aliases or more than :data:`MAX_NODES` nodes once aliases are expanded (a "billion laughs"
file is caught by arithmetic on the event stream, never expanded).

Scalars follow YAML 1.2's core schema for booleans (only ``true``/``false``; ``no`` and ``on``
stay strings) and do not turn dates into ``datetime`` objects: prompt text stays text.
"""

from __future__ import annotations

import hashlib
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import HarnessError

#: Largest scenario or included file accepted, in bytes.
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Largest total of all files read for one scenario (the file plus its includes).
MAX_TOTAL_BYTES = 8 * 1024 * 1024
#: Deepest nesting of mappings and sequences in one file.
MAX_DEPTH = 64
#: Most aliases (``*name``) in one file.
MAX_ALIASES = 100
#: Most nodes in one file once aliases and merge keys are expanded.
MAX_NODES = 100_000
#: Deepest chain of YAML files including YAML files.
MAX_INCLUDE_DEPTH = 4
#: Most ``!include`` tags in one scenario (all files together).
MAX_INCLUDES = 100

#: Included files with these suffixes are parsed as YAML (JSON is YAML); others are text.
YAML_SUFFIXES = (".yaml", ".yml", ".json")

Path_ = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_INCLUDE = "!include"
_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

_SYNTAX_FIX = "fix the YAML syntax (indentation, quotes, colons)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario, rendered ``file:line: field: message — fix``."""

    file: str
    line: int
    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        message, fix = _one_line(self.message), _one_line(self.fix)
        return f"{self.file}:{self.line}: {self.field}: {message} — {fix}"


class YamlProblem(Exception):
    """Loading stopped at the first problem (hostile or broken input is not worth continuing)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


@dataclass(frozen=True)
class Location:
    file: str
    line: int


@dataclass
class LoadedYaml:
    """Plain data plus where each value came from.

    ``lines`` maps a path (keys and list indexes from the root) to the location of that key or
    list item; included YAML files contribute locations in their own file.
    """

    data: Any
    lines: dict[Path_, Location]
    files: list[Path] = field(default_factory=list)
    sha256: str = ""

    def location(self, path: Path_) -> Location:
        """The location of ``path``, or of its nearest ancestor present in the file."""
        for n in range(len(path), -1, -1):
            loc = self.lines.get(path[:n])
            if loc is not None:
                return loc
        return Location(self.files[0].as_posix() if self.files else "?", 1)


def format_path(path: Path_) -> str:
    """``prompts[2].turns[0]``; keys that are not plain words are quoted: ``gates["a.b"]``."""
    if not path:
        return "(top level)"
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def show(value: Any, limit: int = 40) -> str:
    """A short, one-line rendering of a user value for messages."""
    text = value if isinstance(value, str) else repr(value)
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


class _Loader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """Safe loader with YAML 1.2 booleans and no timestamp resolution."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def read_text(path: Path, display: str, *, line: int = 1, budget: list[int] | None = None) -> str:
    """Read a UTF-8 text file with the size limits; problems are reported at ``display:line``."""

    def fail(message: str, fix: str, at: int = line, where: str = display) -> YamlProblem:
        return YamlProblem(Problem(where, at, "(file)", message, fix))

    try:
        info = path.stat()
    except FileNotFoundError:
        raise fail("file not found", "check the path") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}", "check the path and permissions") from None
    if stat.S_ISDIR(info.st_mode):
        raise fail("is a directory, not a file", "name a file")
    if not stat.S_ISREG(info.st_mode):
        raise fail("not a regular file", "name a regular text file")
    if info.st_size > MAX_FILE_BYTES:
        raise fail(
            f"file is {info.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit",
            "split it or move long text into smaller !include files",
        )
    if budget is not None:
        budget[0] += info.st_size
        if budget[0] > MAX_TOTAL_BYTES:
            raise fail(
                f"included files total over {MAX_TOTAL_BYTES:,} bytes",
                "include fewer or smaller files",
            )
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}", "check the path and permissions") from None
    if len(raw) > MAX_FILE_BYTES:
        raise fail(
            f"file is over the {MAX_FILE_BYTES:,}-byte limit",
            "split it or move long text into smaller !include files",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        raise fail(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            "save the file as UTF-8",
            at=bad_line,
            where=path.as_posix(),
        ) from None
    return text.removeprefix("\ufeff")


def _yaml_error(exc: yaml.YAMLError, file: str, text: str) -> YamlProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        fix = _SYNTAX_FIX
        lines = text.splitlines()
        bad = lines[line - 1] if 0 < line <= len(lines) else ""
        if "\t" in bad[: len(bad) - len(bad.lstrip())] or "'\\t'" in problem:
            fix = "indent with spaces, not tabs"
        elif "undefined alias" in problem or "found undefined" in problem:
            fix = "define the anchor (&name) before using *name"
        return YamlProblem(Problem(file, line, "(yaml)", f"invalid YAML: {problem}", fix))
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: max(exc.position, 0)].count("\n") + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "?")
        return YamlProblem(
            Problem(
                file,
                line,
                "(yaml)",
                f"invalid YAML: unacceptable character U+{char:04X}",
                "remove control characters from the file",
            )
        )
    return YamlProblem(Problem(file, 1, "(yaml)", f"invalid YAML: {exc}", _SYNTAX_FIX))


def _prescan(text: str, file: str) -> None:
    """Walk the event stream once to enforce depth, alias and expansion limits cheaply."""
    loader = _Loader(text)
    try:
        # Each frame: [node count so far, anchor name or None]
        stack: list[list[Any]] = [[0, None]]
        sizes: dict[str, int] = {}
        open_anchors: set[str] = set()
        aliases = 0
        documents = 0
        while True:
            event = loader.get_event()
            if event is None or isinstance(event, yaml.StreamEndEvent):
                break
            line = event.start_mark.line + 1 if event.start_mark is not None else 1
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise YamlProblem(
                        Problem(
                            file,
                            line,
                            "(yaml)",
                            "more than one YAML document in the file",
                            "keep one document per file (remove '---')",
                        )
                    )
            elif isinstance(event, yaml.ScalarEvent):
                stack[-1][0] += 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise YamlProblem(
                        Problem(
                            file,
                            line,
                            "(yaml)",
                            f"more than {MAX_ALIASES} aliases",
                            "write the values out instead of *aliases",
                        )
                    )
                if event.anchor in open_anchors:
                    raise YamlProblem(
                        Problem(
                            file,
                            line,
                            "(yaml)",
                            f"alias *{event.anchor} refers to itself",
                            "remove the recursive alias",
                        )
                    )
                size = sizes.get(event.anchor or "")
                if size is None:
                    raise YamlProblem(
                        Problem(
                            file,
                            line,
                            "(yaml)",
                            f"undefined alias *{event.anchor}",
                            "define the anchor (&name) before using *name",
                        )
                    )
                stack[-1][0] += size
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(stack) > MAX_DEPTH:
                    raise YamlProblem(
                        Problem(
                            file,
                            line,
                            "(yaml)",
                            f"nesting deeper than {MAX_DEPTH} levels",
                            "flatten the structure",
                        )
                    )
                stack.append([0, event.anchor])
                if event.anchor is not None:
                    open_anchors.add(event.anchor)
            elif isinstance(event, yaml.CollectionEndEvent):
                count, anchor = stack.pop()
                stack[-1][0] += count + 1
                if anchor is not None:
                    sizes[anchor] = count + 1
                    open_anchors.discard(anchor)
            if stack[0][0] + sum(frame[0] for frame in stack[1:]) > MAX_NODES:
                raise YamlProblem(
                    Problem(
                        file,
                        line,
                        "(yaml)",
                        f"more than {MAX_NODES:,} values (aliases count once per use)",
                        "split the file, or avoid nesting *aliases",
                    )
                )
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file, text) from None
    finally:
        loader.dispose()


def _compose(text: str, file: str) -> Node | None:
    _prescan(text, file)
    loader = _Loader(text)
    try:
        node: Node | None = loader.get_single_node()
        return node
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file, text) from None
    finally:
        loader.dispose()


@dataclass
class _Context:
    lines: dict[Path_, Location] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    digest: Any = field(default_factory=hashlib.sha256)
    budget: list[int] = field(default_factory=lambda: [0])
    includes: int = 0


class _Builder:
    """Turns a node graph into plain values, recording the location of every path."""

    def __init__(self, ctx: _Context, path: Path, display: str, chain: tuple[Path, ...]) -> None:
        self.ctx = ctx
        self.path = path
        self.file = display
        self.chain = chain  # the files including this one, outermost first, then this one

    def fail(self, node: Node, where: Path_, message: str, fix: str) -> YamlProblem:
        return YamlProblem(
            Problem(self.file, node.start_mark.line + 1, format_path(where), message, fix)
        )

    def unsupported_tag(self, node: Node, where: Path_) -> YamlProblem:
        """Only plain YAML types and ``!include`` are read: no other tag builds anything."""
        return self.fail(
            node,
            where,
            f"unsupported tag {_short_tag(node.tag)}",
            "remove the tag (only !include is supported)",
        )

    def build(self, node: Node, where: Path_) -> Any:
        if isinstance(node, ScalarNode):
            return self.scalar(node, where)
        if isinstance(node, SequenceNode):
            if node.tag not in ("tag:yaml.org,2002:seq",):
                raise self.unsupported_tag(node, where)
            items = []
            for index, child in enumerate(node.value):
                self.ctx.lines.setdefault(
                    (*where, index), Location(self.file, child.start_mark.line + 1)
                )
                items.append(self.build(child, (*where, index)))
            return items
        if isinstance(node, MappingNode):
            if node.tag not in ("tag:yaml.org,2002:map",):
                raise self.unsupported_tag(node, where)
            result: dict[str, Any] = {}
            explicit, merged = self.pairs(node, where)
            for key_node, value_node, is_explicit in [(k, v, True) for k, v in explicit] + [
                (k, v, False) for k, v in merged
            ]:
                key = self.key(key_node, where)
                if key in result:
                    if not is_explicit:
                        continue  # merged keys never override explicit (or earlier merged) ones
                    raise self.fail(
                        key_node,
                        (*where, key),
                        f"duplicate key {show(key)}",
                        "keep one of the two entries",
                    )
                self.ctx.lines.setdefault(
                    (*where, key), Location(self.file, key_node.start_mark.line + 1)
                )
                result[key] = self.build(value_node, (*where, key))
            return result
        raise self.fail(node, where, "unsupported YAML node", "use plain mappings, lists, values")

    def pairs(
        self, node: MappingNode, where: Path_
    ) -> tuple[list[tuple[Node, Node]], list[tuple[Node, Node]]]:
        """Explicit pairs, and pairs brought in by ``<<`` merge keys (in priority order)."""
        explicit: list[tuple[Node, Node]] = []
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        raise self.fail(
                            source,
                            where,
                            "'<<' merges only mappings",
                            "merge a mapping such as <<: *defaults",
                        )
                    inner_explicit, inner_merged = self.pairs(source, where)
                    merged.extend(inner_explicit + inner_merged)
            else:
                explicit.append((key_node, value_node))
        return explicit, merged

    def key(self, node: Node, where: Path_) -> str:
        if not isinstance(node, ScalarNode) or node.tag == _INCLUDE:
            raise self.fail(
                node, where, "mapping keys must be plain strings", "use a simple word as the key"
            )
        value = self.scalar(node, where)
        if not isinstance(value, str):
            raise self.fail(
                node, where, f"key {show(node.value)} is not a string", f'quote it: "{node.value}"'
            )
        return value

    def scalar(self, node: ScalarNode, where: Path_) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _INCLUDE:
            return self.include(node, where)
        if tag == _INT:
            return _CONSTRUCTOR.construct_yaml_int(node)
        if tag == _FLOAT:
            return _CONSTRUCTOR.construct_yaml_float(node)
        if tag == _BOOL:
            return _CONSTRUCTOR.construct_yaml_bool(node)
        if tag == _NULL:
            return None
        raise self.unsupported_tag(node, where)

    def include(self, node: ScalarNode, where: Path_) -> Any:
        name = node.value.strip()
        line = node.start_mark.line + 1
        self.ctx.includes += 1
        if self.ctx.includes > MAX_INCLUDES:
            raise self.fail(
                node, where, f"more than {MAX_INCLUDES} !include tags", "include fewer files"
            )
        if not name:
            raise self.fail(
                node, where, "!include needs a file name", "write !include prompts/name.md"
            )
        if Path(name).is_absolute():
            raise self.fail(
                node,
                where,
                f"absolute !include path {show(name)}",
                "use a path relative to this file so the scenario stays portable",
            )
        target = self.path.parent / name
        display = target.as_posix()
        if target.resolve() in {p.resolve() for p in self.chain}:
            raise self.fail(
                node,
                where,
                f"!include {show(name)} includes itself",
                "remove the circular !include",
            )
        try:
            text = read_text(target, self.file, line=line, budget=self.ctx.budget)
        except YamlProblem as exc:
            p = exc.problem
            if p.file == self.file:  # a problem with the include itself: point at the tag
                raise YamlProblem(
                    Problem(
                        p.file,
                        p.line,
                        format_path(where),
                        f"!include {show(name)}: {p.message}",
                        p.fix,
                    )
                ) from None
            raise
        self.ctx.files.append(target)
        self.ctx.digest.update(text.encode())
        if target.suffix.lower() not in YAML_SUFFIXES:
            if not text.strip():
                raise self.fail(
                    node,
                    where,
                    f"!include {show(name)} is empty",
                    "write the text into the file or remove the !include",
                )
            return text.rstrip("\n")
        if len(self.chain) > MAX_INCLUDE_DEPTH:
            raise self.fail(
                node,
                where,
                f"!include nested deeper than {MAX_INCLUDE_DEPTH}",
                "include fewer levels of YAML files",
            )
        root = _compose(text, display)
        if root is None:
            raise self.fail(
                node,
                where,
                f"!include {show(name)} has no YAML content",
                "write a value into the file or remove the !include",
            )
        child = _Builder(self.ctx, target, display, (*self.chain, target))
        return child.build(root, where)


def load_yaml(path: Path) -> LoadedYaml:
    """Load one YAML file (and its includes) into plain data with a line for every path.

    Raises :class:`YamlProblem` at the first problem. ``data`` is ``None`` for an empty file.
    """
    display = path.as_posix()
    ctx = _Context()
    text = read_text(path, display, budget=ctx.budget)
    ctx.files.append(path)
    ctx.digest.update(text.encode())
    root = _compose(text, display)
    if root is None:
        return LoadedYaml(None, {(): Location(display, 1)}, ctx.files, ctx.digest.hexdigest())
    ctx.lines[()] = Location(display, root.start_mark.line + 1)
    data = _Builder(ctx, path, display, (path,)).build(root, ())
    return LoadedYaml(data, ctx.lines, ctx.files, ctx.digest.hexdigest())


def read_settings(path: Path, label: str, fix: str) -> Any:
    """A small YAML/JSON settings file (an emulator profile, ``--defaults``) as PyYAML's safe
    loader reads it; unreadable or unparsable: one line ``LABEL[:LINE]: why — fix``."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HarnessError(f"{label}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise HarnessError(f"{label}{where}: not valid YAML — {fix}") from None
