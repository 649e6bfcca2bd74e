"""The thin ``harness`` command: argument parsing and terminal output, one module per command.

``harness.cli:main`` is the console-script entry point; the parser and the commands load only
when it is called, so importing this package costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``harness`` command on ``argv`` (default ``sys.argv[1:]``); return its status."""
    from harness.cli.app import main as run_main

    return run_main(argv)
