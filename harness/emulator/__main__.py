"""``python -m harness.emulator``: ``harness emulator`` (what :class:`EmulatorProcess` starts)."""

import sys

from harness.cli.app import main

raise SystemExit(main(["emulator", *sys.argv[1:]]))
