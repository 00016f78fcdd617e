"""The bridge server's runtime, below its transports.

The job service (:mod:`~bridge.server.service`) is the one place requests enter; the SQLite queue
(:mod:`~bridge.server.queue`) is the source of truth; the scheduler (:mod:`~bridge.server.scheduler`)
runs one job at a time in a worker process (:mod:`~bridge.server.worker`); the status board
(:mod:`~bridge.server.status`) keeps ``outbox/status.json`` current.
"""
