"""The embedded default generator, ``arranger``: no weights, CPU only.

Modules: :mod:`.style` (prompt words -> Style, section role -> Shape), :mod:`.grid` (bars and
pulses in any metre), :mod:`.harmony` (chord timeline from Harte labels, melody or key),
:mod:`.drums`, :mod:`.bass`, :mod:`.keys`, :mod:`.lead` (the parts, in beats) and
:mod:`.generator` (:class:`~models.arranger.generator.ArrangerGenerator`, which renders the parts
with :mod:`models.render`). Import the generator module itself; this package imports nothing.
"""
