"""Talking to a remote generation worker: the wire forms and the bridge's client."""
