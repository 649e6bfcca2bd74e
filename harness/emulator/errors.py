"""OpenAI-shaped API errors: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import json
from dataclasses import KW_ONLY, dataclass


@dataclass(eq=False)
class ApiError(Exception):
    """An error reply. ``message`` is one line, worded like OpenAI's where we know it."""

    status: int
    message: str
    _: KW_ONLY
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> bytes:
        """The JSON body."""
        return json.dumps(
            {
                "error": {
                    "message": self.message,
                    "type": self.type,
                    "param": self.param,
                    "code": self.code,
                }
            }
        ).encode()


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """400 ``invalid_request_error``."""
    return ApiError(400, message, param=param, code=code)


def missing_parameter(param: str) -> ApiError:
    """400 for a required parameter left out (``param`` is its path, e.g. ``input[0].call_id``)."""
    return invalid(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def unknown_parameter(key: str, endpoint: str) -> ApiError:
    """400 for a top-level key the endpoint does not accept (chat and responses word it apart)."""
    if endpoint == "chat":
        return invalid(f"Unrecognized request argument supplied: {key}", param=key)
    return invalid(f"Unknown parameter: '{key}'.", param=key, code="unknown_parameter")


def unsupported_parameter(key: str, hint: str = "") -> ApiError:
    """400 for a parameter this model or endpoint does not support."""
    return invalid(
        f"Unsupported parameter: '{key}' is not supported with this model.{hint}",
        param=key,
        code="unsupported_parameter",
    )


def not_found(kind: str, object_id: str, param: str) -> ApiError:
    """404 for a stored object (response, conversation, item) this server does not hold."""
    return ApiError(404, f"{kind} with id '{object_id}' not found.", param=param, code="not_found")


def model_not_found(model: str) -> ApiError:
    """404 for an unknown model."""
    return ApiError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def not_emulated(what: str, param: str | None = None) -> ApiError:
    """400 for something OpenAI supports but this emulator does not (says so plainly)."""
    return invalid(
        f"{what} is not supported by this emulator (not OpenAI).",
        param=param,
        code="unsupported_by_emulator",
    )
