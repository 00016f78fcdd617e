"""Exporters: a finished job's arrangement as files other programs open (REAPER ``.rpp``, MIDI).

Exporters are pure writers: they take sections, a tempo map and placed items, and know nothing
about requests, queues or transports.
"""
