"""Exporters: a finished job's arrangement as files other programs open.

REAPER ``.rpp``, arrangement MIDI, ``.dawproject`` (Bitwig, Studio One, Cubase), Broadcast-WAV
``bext`` positions for the stem files, and the session report (HTML + pictures).

Exporters are pure writers: they take sections, a tempo map and placed items, and know nothing
about requests, queues or transports.
"""
