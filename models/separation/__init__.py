"""Source separation: split a generated mix into the requested stems (Demucs).

See :mod:`models.separation.stems` for how Demucs' sources map onto requested stems.
"""
