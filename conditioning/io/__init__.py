"""File and model I/O for conditioning: reading MIDI and audio, writing WAVs, basic-pitch.

The rest of :mod:`conditioning` is pure maths over numpy arrays and dataclasses and never
imports this package (checked by import-linter).
"""
