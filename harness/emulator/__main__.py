"""``python -m harness.emulator``: the emulator server (used by :class:`EmulatorProcess`)."""

from harness.emulator.server import main

raise SystemExit(main())
