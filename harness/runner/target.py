"""Where requests go: the built-in emulator (in its own process), OpenAI, or any compatible URL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from harness.errors import TargetError

OPENAI_URL = "https://api.openai.com/v1"
#: Placeholder key for servers that need none; never a real secret.
NO_KEY = "sk-no-key-needed"


@dataclass
class Target:
    """A resolved target. ``api_key`` is never written anywhere."""

    name: str
    base_url: str
    api_key: str
    is_emulator: bool
    emulator_profile: str | None = None
    emulator_seed: int | None = None

    @property
    def label(self) -> str:
        from harness.fmt import target_label

        return target_label(self.name, self.is_emulator)


def _check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise TargetError(
            f"--target {url!r}: not 'emulator', 'openai' or an http(s) URL — "
            "use e.g. --target http://127.0.0.1:8000/v1"
        )
    return url.rstrip("/")


@contextmanager
def open_target(
    target: str = "emulator",
    *,
    emulator_profile: str = "parity",
    emulator_seed: int = 0,
    emulator_time_scale: float = 1.0,
    truth_log: Path | None = None,
) -> Iterator[Target]:
    """Resolve ``target``; for ``emulator``, start one in its own process for the duration."""
    if target == "emulator":
        from harness.emulator.server import EmulatorProcess

        with EmulatorProcess(
            profile=emulator_profile,
            seed=emulator_seed,
            truth_log=truth_log,
            time_scale=emulator_time_scale,
        ) as emu:
            yield Target("emulator", emu.base_url, NO_KEY, True, emulator_profile, emulator_seed)
        return
    url = check_target(target)
    if target == "openai":
        yield Target("openai", url, os.environ["OPENAI_API_KEY"], False)
        return
    yield Target(target, url, url_key(url), False)


def check_target(target: str) -> str:
    """The base URL of a non-emulator ``target``, or :class:`TargetError` for one that cannot
    work (not an http(s) URL; OpenAI without a key) — called before a run starts anything."""
    if target == "openai":
        if not os.environ.get("OPENAI_API_KEY"):
            raise TargetError(
                "--target openai needs OPENAI_API_KEY in the environment — "
                "export it, or use --target emulator / --replay DIR offline"
            )
        return _check_url(os.environ.get("OPENAI_BASE_URL") or OPENAI_URL)
    return _check_url(target)


def url_key(url: str) -> str:
    """The key for a URL target: ``HARNESS_TARGET_API_KEY``; ``OPENAI_API_KEY`` only for
    OpenAI's and Azure OpenAI's own hosts (never sent to a third-party server); else none."""
    explicit = os.environ.get("HARNESS_TARGET_API_KEY")
    if explicit:
        return explicit
    host = urlsplit(url).hostname or ""
    if url.startswith("https://") and host.endswith(("openai.com", "openai.azure.com")):
        return os.environ.get("OPENAI_API_KEY") or NO_KEY
    return NO_KEY
