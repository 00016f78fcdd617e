"""stembridge's bridge: everything between a DAW and the generators.

Read it top-down; each layer imports only the layers below it (checked by import-linter, see
``[tool.importlinter]`` in ``pyproject.toml``):

- :mod:`bridge.cli` — the ``stembridge`` command (one entry point, one module per command group).
- :mod:`bridge.app` — wiring: starts the job service, the scheduler and every transport.
- :mod:`bridge.transports` — OSC, the file mailbox and MIDI triggers, each turning its messages
  into calls on the job service.
- :mod:`bridge.server` — the typed job service, the persistent queue, the scheduler, the worker
  process and the status board.
- :mod:`bridge.job` — one request end to end: decoding, material loading, the pipeline, takes,
  stem placement and the manifest.
- :mod:`bridge.export` — files other programs open: REAPER projects, MIDI.
"""
