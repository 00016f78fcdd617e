"""The bridge server's runtime, below its transports.

- :mod:`~bridge.server.service`: the typed job service, the one place requests enter
  (generate, variation, cancel, status), whatever transport carried them.
- :mod:`~bridge.server.controller`: controller actions (rerun last, regenerate last range,
  variation of the last, cancel current) that MIDI triggers fire, each a call on the service.
- :mod:`~bridge.server.auth`: the shared token untrusted senders must present.
- :mod:`~bridge.server.intake`: the thread where request validation (which reads files) runs.
- :mod:`~bridge.server.replies`: origins, the reply sink and ``/stembridge/*`` replies.
- :mod:`~bridge.server.events`: job events to senders, failure manifests, the housekeeping
  thread, and the start-up sweep of what a killed run left half-done.
- :mod:`~bridge.server.loglimit`: rate-limited log lines, so a flood cannot fill the disk.
- :mod:`~bridge.server.queue`: the SQLite queue, the source of truth;
  :mod:`~bridge.server.scheduler` runs one job at a time in a worker process
  (:mod:`~bridge.server.worker`); :mod:`~bridge.server.status` keeps ``outbox/status.json`` current.
"""
