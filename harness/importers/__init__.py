"""``harness import``: real traffic (request logs, batch files, fine-tuning files, OTel traces)
into a scenario file.

One module per source format yields :class:`~harness.importers.source.SourceRequest` records
(a Chat Completions request body and its line) or :class:`~harness.importers.source.BadLine`;
:mod:`harness.importers.build` turns any such stream into one scenario and an import report,
after :mod:`harness.importers.scrub` has removed secrets and personal data.
:mod:`harness.importers.formats` picks the reader for a format name.
"""
