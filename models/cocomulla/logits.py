"""Full-forward logits of MusicGen with the Coco-Mulla adapter (the reference contract)."""

from __future__ import annotations

from typing import Any

import torch

from models.cocomulla.adapter import CocoMullaAdapter, attached, condition_states


def adapter_logits(
    decoder: Any, adapter: CocoMullaAdapter, *, input_ids: torch.Tensor, encoder_hidden_states: torch.Tensor,
    encoder_attention_mask: torch.Tensor, chords: torch.Tensor, piano_roll: torch.Tensor,
    drum_codes: torch.Tensor, cond_mask: torch.Tensor,
) -> torch.Tensor:
    """Logits of ``decoder`` with ``adapter`` active, in one full forward (no cache).

    Args:
        decoder: ``MusicgenForCausalLM``.
        adapter: from :func:`load_adapter`.
        input_ids: (B * K, S) codes, delay pattern applied.
        encoder_hidden_states: (B, L, hidden) text states, already projected to the decoder width.
        encoder_attention_mask: (B, L), 1 = attend.
        chords: (B, T, 37); piano_roll: (B, T, 128); drum_codes: (B, K, T) without delay;
        cond_mask: (B, 2, T), [piano, drums], 1 = present.

    Returns:
        (B, K, S, codebook size) logits.
    """
    states = condition_states(
        decoder, adapter, chords=chords, piano_roll=piano_roll, drum_codes=drum_codes, cond_mask=cond_mask
    )
    with attached(decoder, states):
        out = decoder(
            input_ids=input_ids, encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask, use_cache=False,
        )
    logits: torch.Tensor = out.logits
    num_codebooks = int(decoder.config.num_codebooks)
    return logits.reshape(-1, num_codebooks, *logits.shape[1:])
