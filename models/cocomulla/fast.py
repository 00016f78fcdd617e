"""The Coco-Mulla adapter on the fast MusicGen decoder (static cache, one-pass CFG, CUDA graphs).

:class:`CocoMullaFastDecoder` is a :class:`~models.musicgen.fast_decode.FastMusicGenDecoder`
whose adapted layers add the condition attention of the window's content conditions, exactly
as :func:`~models.cocomulla.adapter.attached` does on transformers' own modules:

* the condition queries/keys/values (:class:`~models.cocomulla.adapter.ConditionStates`) are
  computed once per window by the caller and repeated here to the decoder's rows, so every
  item and both classifier-free-guidance branches ``[text; no text]`` see the content;
* the prefill runs the stock decoder forward with :func:`attached` hooks, as the stock path does;
* each decode step adds, in every adapted layer, ``gate_i * out_proj(attention(q + q_c[s], k_c,
  v_c))`` to the self-attention's output (hook :meth:`~FastMusicGenDecoder._attention_output`),
  with ``s`` the step's sequence index clamped to the last condition query (the authors' clamp).

The step stays graph-capturable: in the "static" and "graph" modes the condition index is
computed on the device from the decoder's position tensor; the gates are cast to the decoder's
dtype once per decode (fp16 base weights with an fp32 adapter: the condition states are already
in the decoder's dtype, see :func:`~models.cocomulla.adapter.condition_states`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from models.cocomulla.adapter import ConditionStates, attached
from models.musicgen.fast_decode import FastMusicGenDecoder
from models.musicgen.static_cache import StaticKVCache
from models.musicgen.token_picking import PickOptions


class CocoMullaFastDecoder(FastMusicGenDecoder):
    """Fast MusicGen decoding with the Coco-Mulla condition attention.

    Args:
        model: a plain ``MusicgenForConditionalGeneration`` (not melody), eval mode, on its device.
        states: condition states of the window, for one item (shared by every item of the batch)
            or for each of the ``B`` items (item-major, as the texts are given).
        mode: step mode, as :class:`FastMusicGenDecoder`.

    Raises:
        ValueError: a melody model, or states that do not cover the decoder's layers.
    """

    def __init__(self, model: Any, states: ConditionStates, *, mode: str | None = None) -> None:
        super().__init__(model, mode=mode)
        if self.melody:
            raise ValueError("Coco-Mulla adapts plain MusicGen, not MusicGen-melody")
        layers = len(self._weights)
        if states.start_layer < 0 or states.start_layer + len(states.qkv) != layers:
            raise ValueError(
                f"condition states cover layers {states.start_layer}..{states.start_layer + len(states.qkv) - 1} "
                f"but the decoder has {layers} layers"
            )
        self.states = states

    def rows_states(self, rows: int) -> ConditionStates:
        """The states repeated to ``rows`` decoder rows (items x CFG branches).

        Raises:
            ValueError: ``rows`` is not a multiple of the states' batch.
        """
        batch = self.states.batch
        if rows % batch:
            raise ValueError(
                f"{batch} condition items do not divide the decoder's {rows} rows; give states for one "
                "item or for every text"
            )
        return self.states if rows == batch else self.states.repeated(rows // batch)

    # -- hooks --------------------------------------------------------------------------------
    def _prefill(
        self, rows_ids: Any, text_ids: Any, text_mask: Any, chroma: Any | None, options: PickOptions,
        *, capacity_tokens: int,
    ) -> tuple[Any, StaticKVCache]:
        states = self.rows_states(int(rows_ids.shape[0]) // self.num_codebooks)
        q0 = states.qkv[0][0]
        self._cond_qkv = states.qkv
        self._cond_gates = [states.gates[j].to(q0.dtype) for j in range(len(states.qkv))]
        self._cond_last = int(states.query_frames) - 1
        with attached(self.lm, states):
            return super()._prefill(
                rows_ids, text_ids, text_mask, chroma, options, capacity_tokens=capacity_tokens
            )

    def _forward_step(self, codes: Any, pos: int | None) -> Any:
        if pos is None:  # capturable: the condition query index on the device
            self._cond_index = (self._pos + self._offset).clamp(max=self._cond_last).view(1)
        return super()._forward_step(codes, pos)

    def _attention_output(self, i: int, q: Any, out: Any, pos: int | None) -> Any:
        base = super()._attention_output(i, q, out, pos)
        j = i - self.states.start_layer
        if j < 0:
            return base
        q_c, k_c, v_c = self._cond_qkv[j]
        if pos is not None:
            frame = min(self._offset + pos, self._cond_last)
            query = q + q_c[:, :, frame : frame + 1]
        else:
            query = q + q_c.index_select(2, self._cond_index)
        w = self._weights[i]
        dx = F.scaled_dot_product_attention(query, k_c, v_c, scale=w.scaling)
        dx = dx.transpose(1, 2).reshape(dx.shape[0], 1, -1)
        gate: torch.Tensor = self._cond_gates[j]
        return base + gate * F.linear(dx, w.out[0])

    def _release(self) -> None:
        super()._release()
        for name in ("_cond_qkv", "_cond_gates", "_cond_index"):
            self.__dict__.pop(name, None)
