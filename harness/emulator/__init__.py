"""An OpenAI-compatible emulator (not OpenAI) of Chat Completions and the Responses API.

It serves the endpoints the harness uses with OpenAI's shapes, SSE event order, prompt-caching
rules, stored responses, conversations, and configurable latency/fault profiles, so the harness
can be shown, tested and benchmarked offline. Ground truth of every request (delays applied,
server-observed times) goes to a truth log only, never into replies.

Entry points: :func:`harness.emulator.app.create_app`, :func:`harness.emulator.server.serve`,
:class:`harness.emulator.server.EmulatorThread`, :class:`harness.emulator.server.EmulatorProcess`
and :func:`harness.emulator.profiles.load_profile`.

Modules, in request order: ``app`` (routes) → ``engine`` (pipeline) → ``chat`` /
``responses_in`` (+ ``validate``, ``models``, ``errors``) parse into the neutral ``prompt``
model → ``cache`` (prompt caching) → ``content`` (+ ``schema_values``) writes the reply →
``latency`` draws delays and faults from ``profiles`` → ``chat`` / ``responses_out`` build
bodies and SSE events → ``store`` keeps responses, ``conversations`` conversations →
``streaming`` sends on time and writes ``truth``; ``headers``, ``jsonio`` and ``testing``
(helpers for tests) support them.
"""

from harness import __version__

#: Value of the ``x-emulator`` header on every reply.
EMULATOR_ID = f"shadow-harness/{__version__}"
#: Header naming the profile that served a reply, so a client that did not start the emulator
#: (a shadow run against `harness emulator`) can say which profile it measured.
PROFILE_HEADER = "x-emulator-profile"
