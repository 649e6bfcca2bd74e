"""vcrpy cassettes: record a run once, replay it offline with its timing, check staleness.

``vcr_config()`` (for pytest-recording's ``vcr_config`` fixture) loads on first use, so importing
a submodule stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import lazy_exports

__all__ = ["CassetteMiss", "vcr_config"]

if TYPE_CHECKING:
    from harness.cassettes.replay import CassetteMiss, vcr_config

__getattr__, __dir__ = lazy_exports(
    __name__, {"CassetteMiss": "harness.cassettes.replay", "vcr_config": "harness.cassettes.replay"}
)
