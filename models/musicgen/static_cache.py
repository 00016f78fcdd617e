"""A preallocated key/value cache for the MusicGen decoder.

Self-attention keys and values of every layer live in one buffer each, shaped
``(layers, rows, heads, capacity, head_dim)``, allocated once per decode: a step writes one
position in place and never reallocates, so the step's tensors keep their addresses (needed for
CUDA-graph replay). Cross-attention keys and values (plain MusicGen) are fixed after the prefill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class StaticKVCache:
    """Self-attention K/V for ``capacity`` positions and the fixed cross-attention K/V.

    Attributes:
        keys: ``(layers, rows, heads, capacity, head_dim)`` self-attention keys.
        values: same shape, self-attention values.
        cross_keys: ``(layers, rows, heads, source_len, head_dim)`` or None (melody models).
        cross_values: same shape or None.
        cross_bias: ``(rows, 1, 1, source_len)`` additive mask (0 or the dtype's minimum) or None.
        length: positions filled by the prefill.
    """

    keys: Any
    values: Any
    cross_keys: Any | None
    cross_values: Any | None
    cross_bias: Any | None
    length: int

    @property
    def capacity(self) -> int:
        """Positions the buffers hold."""
        return int(self.keys.shape[3])

    @classmethod
    def from_prefill(cls, cache: Any, capacity: int, *, encoder_mask: Any | None) -> StaticKVCache:
        """Copy a transformers cache filled by the prefill forward into static buffers.

        Args:
            cache: the ``EncoderDecoderCache`` (or ``DynamicCache``) returned by the prefill.
            capacity: positions to allocate (prefill length + steps to decode).
            encoder_mask: ``(rows, source_len)`` 0/1 mask of the cross-attention source, or None.

        Raises:
            ValueError: ``capacity`` is shorter than what the prefill already holds.
        """
        import torch

        self_cache = getattr(cache, "self_attention_cache", cache)
        layers = self_cache.layers
        k0 = layers[0].keys
        rows, heads, length, head_dim = k0.shape
        if capacity < length:
            raise ValueError(f"cache capacity {capacity} is shorter than the prefill ({length} positions)")
        shape = (len(layers), rows, heads, capacity, head_dim)
        # zeros, not empty: masked-out slots still meet the attention weights (0 * NaN = NaN)
        keys = torch.zeros(shape, dtype=k0.dtype, device=k0.device)
        values = torch.zeros(shape, dtype=k0.dtype, device=k0.device)
        for i, layer in enumerate(layers):
            keys[i, :, :, :length] = layer.keys
            values[i, :, :, :length] = layer.values
        cross_keys = cross_values = cross_bias = None
        cross: Any = getattr(cache, "cross_attention_cache", None)
        cross_layers = list(getattr(cross, "layers", []))
        first = getattr(cross_layers[0], "keys", None) if cross_layers else None
        if first is not None and first.numel() > 0:
            cross_keys = torch.stack([layer.keys for layer in cross_layers])
            cross_values = torch.stack([layer.values for layer in cross_layers])
            if encoder_mask is not None:
                low = torch.finfo(k0.dtype).min
                bias = torch.zeros(encoder_mask.shape, dtype=k0.dtype, device=k0.device)
                cross_bias = bias.masked_fill(encoder_mask.to(k0.device) == 0, low)[:, None, None, :]
        return cls(keys, values, cross_keys, cross_values, cross_bias, int(length))
