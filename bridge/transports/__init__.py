"""Transports: OSC over UDP, the file mailbox, MIDI controller triggers.

Each one only turns its own messages into calls on :class:`bridge.server.service.JobService` and
its replies back into messages; none of them does slow work on its own thread. The OSC address
space is routed by :mod:`~bridge.transports.osc_router`; MIDI triggers fire
:class:`bridge.server.controller.ControllerActions`, which call the same service.
"""
