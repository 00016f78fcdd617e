"""Transports: OSC over UDP, the file mailbox, MIDI controller triggers.

Each one only turns its own messages into calls on :class:`bridge.server.service.Dispatcher` and
its replies back into messages; none of them does work on its own thread.
"""
