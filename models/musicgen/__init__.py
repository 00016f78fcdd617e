"""MusicGen and MusicGen-melody generators (HuggingFace transformers), stems via Demucs.

Nothing heavy is imported here: torch and transformers load inside :mod:`.generator`,
:mod:`.loading` and :mod:`.sampling` only when a job builds a MusicGen model.
"""
