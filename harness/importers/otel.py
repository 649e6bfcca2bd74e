"""OpenTelemetry GenAI telemetry (OTLP/JSON) as chat requests, in three dialects.

* semantic conventions >= 1.37: span attributes ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` (messages of typed parts), ``gen_ai.system_instructions`` and
  ``gen_ai.tool.definitions`` (also read from a ``gen_ai.client.inference.operation.details``
  log record joined to the span);
* the older per-message events ``gen_ai.system.message``, ``gen_ai.user.message``,
  ``gen_ai.assistant.message``, ``gen_ai.tool.message`` and ``gen_ai.choice``, as span events
  (body fields as attributes or JSON in ``gen_ai.event.content``) or as log records joined to
  their span by ``traceId``/``spanId``;
* OpenLLMetry's flattened ``gen_ai.prompt.{i}.role/content/tool_call_id/tool_calls.{j}.*``,
  ``llm.request.functions.{i}.name/description/parameters`` and ``gen_ai.completion.0.*``.

Request parameters come from ``gen_ai.request.*``; the output message is the reference. A span
whose messages were not captured (content capture off) is listed as not imported. The file is
one OTLP/JSON document or one per line (the collector's file exporter); anything else is
refused with one line.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.importers.source import BadLine, SourceItem, SourceRequest, Unusable

__all__ = ["NOT_CARRIED", "read_otel"]

NOT_CARRIED = {
    "tool_choice": "no GenAI dialect records it",
    "parallel_tool_calls": "no GenAI dialect records it",
}
_SEMCONV_LACKS = {
    "response_format": "the conventions record at most gen_ai.output.type, not the schema",
    "stream": "the conventions do not record whether the call streamed",
    "user": "the conventions do not record the end-user id",
}
#: what one dialect lacks besides, added to the report once a span of that dialect is read
DIALECT_NOT_CARRIED = {
    "semconv": {
        **_SEMCONV_LACKS,
        "tools[].function.strict": "tool definitions carry name, description and parameters",
    },
    "events": {**_SEMCONV_LACKS, "tools": "the per-message events hold no tool definitions"},
    "openllmetry": {
        "response_format.json_schema.name": "gen_ai.request.structured_output_schema holds "
        "the schema only (imported under the name 'response')",
        "response_format.json_schema.strict": "not recorded",
        "stream_options": "only llm.is_streaming is recorded",
        "tools[].function.strict": "llm.request.functions.N holds name, description, parameters",
    },
}

#: ``gen_ai.request.*`` attribute → chat request parameter
_PARAMS = {
    "gen_ai.request.model": "model",
    "gen_ai.request.temperature": "temperature",
    "gen_ai.request.top_p": "top_p",
    "gen_ai.request.max_tokens": "max_completion_tokens",
    "gen_ai.request.frequency_penalty": "frequency_penalty",
    "gen_ai.request.presence_penalty": "presence_penalty",
    "gen_ai.request.seed": "seed",
    "gen_ai.request.stop_sequences": "stop",
}
_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_CHOICE = "gen_ai.choice"
_DETAILS = "gen_ai.client.inference.operation.details"
_CHAT_OPERATIONS = (None, "chat", "generate_content")
_CAPTURE_OFF = "no message content recorded (content capture was off when it was traced)"


#: what a malformed OTLP structure raises while it is read (a string where a list belongs, …)
_MALFORMED = (AttributeError, TypeError, ValueError, KeyError)


class _Skip(Exception):
    """This span holds no usable request; the message is the reason."""


# --------------------------------------------------------------------------- OTLP/JSON


def _any(value: Any) -> Any:
    """An OTLP/JSON AnyValue as a plain value."""
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "intValue" in value:  # int64 is a JSON string in OTLP/JSON
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_any(v) for v in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return _attributes((value["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {
        kv["key"]: _any(kv.get("value"))
        for kv in items
        if isinstance(kv, dict) and isinstance(kv.get("key"), str)
    }


def _json(value: Any) -> Any:
    """Structured attributes may be recorded as JSON strings (the conventions allow both)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


_NOT_OTLP_FIX = "give an OTLP/JSON export (resourceSpans or resourceLogs)"


def _documents(path: Path) -> Iterator[tuple[int, Any] | BadLine]:
    """The OTLP documents of ``path`` with their line: one per line (the collector's file
    exporter), read a line at a time, or one pretty-printed document (read whole)."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        lines = (pair for pair in enumerate(fh, 1) if pair[1].strip())
        first = next(lines, None)
        if first is None:
            raise HarnessError(f"{path}: not OTLP JSON (the file is empty) — {_NOT_OTLP_FIX}")
        try:
            doc = json.loads(first[1])
        except json.JSONDecodeError:
            pass  # not a document per line: one document over many lines
        else:
            yield first[0], doc
            for number, text in lines:
                try:
                    yield number, json.loads(text)
                except json.JSONDecodeError as exc:
                    yield BadLine(number, f"malformed JSON ({exc.msg} at column {exc.colno})")
            return
    with path.open(encoding="utf-8", errors="replace") as fh:
        try:
            whole = json.load(fh)
        except json.JSONDecodeError as exc:
            raise HarnessError(
                f"{path}: not OTLP JSON (malformed JSON: {exc.msg} at line {exc.lineno}) — "
                f"{_NOT_OTLP_FIX}"
            ) from None
    yield 1, whole


def _is_otlp(doc: Any) -> bool:
    return isinstance(doc, dict) and ("resourceSpans" in doc or "resourceLogs" in doc)


def _spans(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in doc.get("resourceSpans") or []:
        for scope in (resource or {}).get("scopeSpans") or []:
            yield from (scope or {}).get("spans") or []


def _logs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in doc.get("resourceLogs") or []:
        for scope in (resource or {}).get("scopeLogs") or []:
            yield from (scope or {}).get("logRecords") or []


# --------------------------------------------------------------------------- dialects


def _text(parts: list[str]) -> Any:
    if len(parts) == 1:
        return parts[0]
    return [{"type": "text", "text": p} for p in parts]


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _semconv_messages(value: Any, attribute: str) -> list[dict[str, Any]]:
    messages = _json(value)
    if not isinstance(messages, list):
        raise _Skip(f"{attribute}: expected a list of messages")
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise _Skip(f"{attribute}: expected messages as objects")
        role = message.get("role")
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in message.get("parts") or []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                if not isinstance(part.get("content"), str):
                    raise _Skip(_CAPTURE_OFF)
                texts.append(part["content"])
            elif kind == "tool_call":
                calls.append(
                    {
                        "id": part.get("id"),
                        "type": "function",
                        "function": {
                            "name": part.get("name"),
                            "arguments": _arguments(part.get("arguments")),
                        },
                    }
                )
            elif kind == "tool_call_response":
                response = part.get("response", part.get("result"))
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": part.get("id"),
                        "content": response if isinstance(response, str) else json.dumps(response),
                    }
                )
            else:
                raise _Skip(f"{attribute}: a {kind!r} part is not imported (text and tools only)")
        if role == "tool":
            continue
        if not texts and not calls:
            raise _Skip(_CAPTURE_OFF)
        msg: dict[str, Any] = {"role": role, "content": _text(texts) if texts else None}
        if calls:
            msg["tool_calls"] = calls
        out.append(msg)
    return out


def _tool_definitions(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    definitions = _json(attrs.get("gen_ai.tool.definitions"))
    if not isinstance(definitions, list):
        return []
    tools = []
    for tool in definitions:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise _Skip("gen_ai.tool.definitions: only function tools are imported")
        function: dict[str, Any] = {"name": tool.get("name")}
        if tool.get("description") is not None:
            function["description"] = tool["description"]
        if tool.get("parameters") is not None:
            function["parameters"] = _json(tool["parameters"])
        tools.append({"type": "function", "function": function})
    return tools


def _semconv(attrs: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    messages = _semconv_messages(attrs["gen_ai.input.messages"], "gen_ai.input.messages")
    system = _json(attrs.get("gen_ai.system_instructions"))
    if isinstance(system, list) and system:
        texts = [p.get("content") for p in system if isinstance(p, dict)]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise _Skip(_CAPTURE_OFF)
        messages.insert(0, {"role": "system", "content": _text([str(t) for t in texts])})
    body: dict[str, Any] = {"messages": messages}
    tools = _tool_definitions(attrs)
    if tools:
        body["tools"] = tools
    reference = None
    output = _json(attrs.get("gen_ai.output.messages"))
    if isinstance(output, list) and output and isinstance(output[0], dict):
        reference = (
            "".join(
                str(p["content"])
                for p in output[0].get("parts") or []
                if isinstance(p, dict)
                and p.get("type") == "text"
                and isinstance(p.get("content"), str)
            )
            or None
        )
    return body, reference


def _event_message(role: str, body: dict[str, Any]) -> dict[str, Any]:
    content = body.get("content")
    calls = body.get("tool_calls")
    if content is None and not calls:
        raise _Skip(_CAPTURE_OFF)
    msg: dict[str, Any] = {"role": body.get("role") or role, "content": content}
    if calls:
        msg["tool_calls"] = [
            {
                "id": c.get("id"),
                "type": c.get("type") or "function",
                "function": {
                    "name": (c.get("function") or {}).get("name"),
                    "arguments": _arguments((c.get("function") or {}).get("arguments")),
                },
            }
            for c in calls
            if isinstance(c, dict)
        ]
    if role == "tool":
        msg["tool_call_id"] = body.get("id")
    return msg


def _events(events: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], str | None]:
    messages: list[dict[str, Any]] = []
    reference = None
    for name, body in events:
        if name == _CHOICE:
            message = body.get("message")
            if reference is None and isinstance(message, dict) and body.get("index", 0) == 0:
                content = message.get("content")
                reference = content if isinstance(content, str) else None
        else:
            messages.append(_event_message(_EVENT_ROLES[name], body))
    if not messages:
        raise _Skip(_CAPTURE_OFF)
    return {"messages": messages}, reference


def _openllmetry(attrs: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    messages: list[dict[str, Any]] = []
    i = 0
    while f"gen_ai.prompt.{i}.role" in attrs:
        key = f"gen_ai.prompt.{i}"
        msg: dict[str, Any] = {"role": attrs[f"{key}.role"]}
        content = attrs.get(f"{key}.content")
        parsed = _json(content) if isinstance(content, str) and content.startswith("[") else None
        # a list of content parts is recorded as its JSON text
        if isinstance(parsed, list) and all(
            isinstance(p, dict) and p.get("type") in ("text", "image_url") for p in parsed
        ):
            content = parsed
        calls = []
        j = 0
        while f"{key}.tool_calls.{j}.name" in attrs:
            calls.append(
                {
                    "id": attrs.get(f"{key}.tool_calls.{j}.id"),
                    "type": "function",
                    "function": {
                        "name": attrs[f"{key}.tool_calls.{j}.name"],
                        "arguments": _arguments(attrs.get(f"{key}.tool_calls.{j}.arguments")),
                    },
                }
            )
            j += 1
        if content is None and not calls:
            raise _Skip(_CAPTURE_OFF)
        msg["content"] = content
        if calls:
            msg["tool_calls"] = calls
        if f"{key}.tool_call_id" in attrs:
            msg["tool_call_id"] = attrs[f"{key}.tool_call_id"]
        messages.append(msg)
        i += 1
    body: dict[str, Any] = {"messages": messages}
    tools = []
    i = 0
    while f"llm.request.functions.{i}.name" in attrs:
        key = f"llm.request.functions.{i}"
        function: dict[str, Any] = {"name": attrs[f"{key}.name"]}
        if attrs.get(f"{key}.description") is not None:
            function["description"] = attrs[f"{key}.description"]
        if attrs.get(f"{key}.parameters") is not None:
            function["parameters"] = _json(attrs[f"{key}.parameters"])
        tools.append({"type": "function", "function": function})
        i += 1
    # newer OpenLLMetry releases record the semantic conventions' tool definitions instead
    tools = tools or _tool_definitions(attrs)
    if tools:
        body["tools"] = tools
    schema = _json(attrs.get("gen_ai.request.structured_output_schema"))
    if isinstance(schema, dict):
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": schema},
        }
    for name, key in (
        ("llm.is_streaming", "stream"),
        ("llm.user", "user"),
        ("llm.frequency_penalty", "frequency_penalty"),
        ("llm.presence_penalty", "presence_penalty"),
    ):
        if attrs.get(name) is not None:
            body[key] = attrs[name]
    completion = attrs.get("gen_ai.completion.0.content")
    return body, completion if isinstance(completion, str) else None


# --------------------------------------------------------------------------- spans


def _event_body(attrs: dict[str, Any], body: Any) -> dict[str, Any]:
    """The event's body: the log record body, JSON in gen_ai.event.content, or attributes."""
    body = _json(body)
    if isinstance(body, dict):
        return body
    content = _json(attrs.get("gen_ai.event.content"))
    if isinstance(content, dict):
        return content
    return {k: _json(v) if k == "tool_calls" else v for k, v in attrs.items()}


def _params(attrs: dict[str, Any]) -> dict[str, Any]:
    params = {target: attrs[name] for name, target in _PARAMS.items() if name in attrs}
    count = attrs.get("gen_ai.request.choice.count")
    if count is not None and count != 1:
        params["n"] = count
    return params


def _request(
    attrs: dict[str, Any], events: list[tuple[str, dict[str, Any]]]
) -> tuple[str, dict[str, Any], str | None]:
    """The span's dialect, request body and reference."""
    if "gen_ai.input.messages" in attrs:
        dialect, (body, reference) = "semconv", _semconv(attrs)
    elif "gen_ai.prompt.0.role" in attrs:
        dialect, (body, reference) = "openllmetry", _openllmetry(attrs)
    elif events:
        dialect, (body, reference) = "events", _events(events)
    else:
        raise _Skip(_CAPTURE_OFF)
    return dialect, {**_params(attrs), **body}, reference


#: one GenAI event log record: (time, arrival, event name, body)
_Record = tuple[int, int, str, dict[str, Any]]


class _Held:
    """GenAI event log records, and the spans waiting for theirs, in a temporary SQLite file:
    the records may come anywhere in the file, and memory must not grow with how many there
    are. Made on the first record or waiting span (files in the other dialects need none)."""

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._db: sqlite3.Connection | None = None
        self._order = 0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._dir = tempfile.TemporaryDirectory(prefix="harness-otel-")
            self._db = sqlite3.connect(Path(self._dir.name) / "held.sqlite")
            self._db.executescript(
                """
                PRAGMA journal_mode = OFF;
                PRAGMA synchronous = OFF;
                CREATE TABLE logs (trace TEXT, span TEXT, time INTEGER, seq INTEGER,
                                   name TEXT, body TEXT);
                CREATE INDEX logs_by_span ON logs (trace, span);
                CREATE TABLE spans (seq INTEGER PRIMARY KEY, line INTEGER, span TEXT);
                """
            )
        return self._db

    def add_logs(self, records: list[tuple[tuple[str, str], int, str, dict[str, Any]]]) -> None:
        if not records:
            return
        rows = []
        for (trace, span), time, name, body in records:
            rows.append((trace, span, time, self._order, name, json.dumps(body)))
            self._order += 1
        self._conn().executemany("INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?)", rows)

    def has_logs(self, key: tuple[str, str]) -> bool:
        if self._db is None:
            return False
        sql = "SELECT 1 FROM logs WHERE trace = ? AND span = ? LIMIT 1"
        return self._db.execute(sql, key).fetchone() is not None

    def logs(self, key: tuple[str, str]) -> list[_Record]:
        """The span's records in time order (arrival order for equal times)."""
        if self._db is None:
            return []
        sql = "SELECT time, seq, name, body FROM logs WHERE trace = ? AND span = ? ORDER BY 1, 2"
        return [(t, n, name, json.loads(b)) for t, n, name, b in self._db.execute(sql, key)]

    def wait(self, line: int, span: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT INTO spans (line, span) VALUES (?, ?)", (line, json.dumps(span))
        )

    def waiting(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if self._db is None:
            return
        for line, span in self._db.execute("SELECT line, span FROM spans ORDER BY seq"):
            yield line, json.loads(span)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        if self._dir is not None:
            self._dir.cleanup()


def _needs_logs(span: dict[str, Any]) -> bool:
    """A span whose request is not in its own attributes or events: its GenAI event log
    records (which may come later in the file) hold it."""
    attrs = span.get("attributes") or []
    keys = {kv.get("key") for kv in attrs if isinstance(kv, dict)}
    if "gen_ai.input.messages" in keys or "gen_ai.prompt.0.role" in keys:
        return False
    return not any(
        isinstance(e, dict) and (e.get("name") in _EVENT_ROLES or e.get("name") == _CHOICE)
        for e in span.get("events") or []
    )


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return str(item.get("traceId", "")), str(item.get("spanId", ""))


def read_otel(path: Path, not_carried: dict[str, str] | None = None) -> Iterator[SourceItem]:
    """Every GenAI chat span of ``path`` as a request (with the output as its reference), a
    span without content as not imported; raises HarnessError if the file is not OTLP JSON.

    A file of one document per line streams: a span that holds its request (attributes or
    span events) is yielded as its line is read; spans whose messages are in log records wait
    for the end of the file (the records may come after the span), held on disk with the
    records. ``not_carried`` is filled as spans are read: :data:`NOT_CARRIED` and what each
    dialect met lacks besides."""
    if not_carried is not None:
        not_carried.update(NOT_CARRIED)
    held = _Held()
    try:
        yield from _read(path, held, not_carried)
    finally:
        held.close()


def _read(path: Path, held: _Held, not_carried: dict[str, str] | None) -> Iterator[SourceItem]:
    found = False
    for entry in _documents(path):
        if isinstance(entry, BadLine):
            yield entry
            continue
        number, doc = entry
        if not _is_otlp(doc):
            if not found:
                raise HarnessError(
                    f"{path}: not OTLP JSON (no resourceSpans or resourceLogs) — give an "
                    "OTLP/JSON export of traces or logs"
                )
            yield BadLine(number, "not an OTLP/JSON document (no resourceSpans or resourceLogs)")
            continue
        found = True
        try:
            doc_spans = [span for span in _spans(doc) if isinstance(span, dict)]
            doc_logs = list(_events_logged(doc))
        except _MALFORMED as exc:
            yield BadLine(number, f"malformed OTLP/JSON ({type(exc).__name__}: {exc})")
            continue
        held.add_logs(doc_logs)
        for span in doc_spans:
            if _needs_logs(span):
                # only a GenAI span waits (or one whose records came first): the HTTP and
                # database spans of a trace are passed over as they are read
                attrs = _attributes(span.get("attributes"))
                if held.has_logs(_key(span)) or any(
                    k.startswith(("gen_ai.", "llm.")) for k in attrs
                ):
                    held.wait(number, span)
                continue
            yield from _span_items(number, span, held, not_carried)
    for number, span in held.waiting():
        yield from _span_items(number, span, held, not_carried)


def _span_items(
    number: int, span: dict[str, Any], held: _Held, not_carried: dict[str, str] | None
) -> Iterator[SourceItem]:
    try:
        item = _span_item(number, span, held.logs(_key(span)), not_carried)
    except _MALFORMED as exc:
        span_id = span.get("spanId", "?")
        yield Unusable(number, f"span {span_id}: malformed attributes ({exc})")
        return
    if item is not None:
        yield item


def _events_logged(
    doc: dict[str, Any],
) -> Iterator[tuple[tuple[str, str], int, str, dict[str, Any]]]:
    """The GenAI event log records of a document: (trace and span id, time, name, body)."""
    for record in _logs(doc):
        if not isinstance(record, dict):
            continue
        attrs = _attributes(record.get("attributes"))
        name = record.get("eventName") or attrs.get("event.name")
        if name in _EVENT_ROLES or name in (_CHOICE, _DETAILS):
            key = _key(record)
            time = int(record.get("timeUnixNano") or record.get("observedTimeUnixNano") or 0)
            body = attrs if name == _DETAILS else _event_body(attrs, _any(record.get("body")))
            yield key, time, str(name), body


def _span_item(
    number: int,
    span: dict[str, Any],
    joined: list[_Record],
    not_carried: dict[str, str] | None,
) -> SourceItem | None:
    """One span as a request, as not imported, or None when it is no GenAI chat call."""
    attrs = _attributes(span.get("attributes"))
    span_id = str(span.get("spanId", ""))
    for _, _, name, body in joined:
        if name == _DETAILS:
            attrs = {**body, **attrs}
    events = [
        (str(e.get("name")), _event_body(_attributes(e.get("attributes")), None))
        for e in span.get("events") or []
        if isinstance(e, dict) and (e.get("name") in _EVENT_ROLES or e.get("name") == _CHOICE)
    ] or [(name, body) for _, _, name, body in joined if name != _DETAILS]
    if not events and not any(k.startswith(("gen_ai.", "llm.")) for k in attrs):
        return None  # not a GenAI span (HTTP, database, …)
    if attrs.get("gen_ai.operation.name") not in _CHAT_OPERATIONS:
        return None  # agent, tool-execution and embedding spans are not chat requests
    where = f"span {span_id or '?'} ({span.get('name', 'unnamed')})"
    try:
        dialect, body, reference = _request(attrs, events)
    except _Skip as exc:
        return Unusable(number, f"{where}: {exc}")
    if not_carried is not None:
        not_carried.update(DIALECT_NOT_CARRIED[dialect])
    if not isinstance(body.get("model"), str):
        body.pop("model", None)
    gaps: list[tuple[str, str]] = []
    if attrs.get("gen_ai.output.type") == "json" and "response_format" not in body:
        gaps.append(
            (
                "response_format",
                "gen_ai.output.type is json but the output format was not recorded: "
                "imported as text (give response_format in --defaults)",
            )
        )
    return SourceRequest(
        number,
        body,
        reference,
        id=f"span-{span_id}" if span_id else None,
        gaps=tuple(gaps),
    )
