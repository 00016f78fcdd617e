"""The Coco-Mulla adapter on transformers' MusicGen decoder.

The adapter (Lin et al., ISMIR 2024) runs a *condition stream* through the frozen decoder
layers' own modules: per adapted layer ``i`` the frame-aligned content conditions (37-d chords,
a 128-pitch piano roll, drum EnCodec codes) are projected to the model width, added after the
layer's first norm, and passed through the layer's causal self-attention and feed-forward
block. Each layer exports the condition queries, keys and values ``q_c, k_c, v_c``; the music
self-attention of that layer then adds ``gate_i * attention(q_c[steps] + q, k_c, v_c)``
(non-causal over all condition frames) before its output projection.

The adapter's own parameters carry the authors' checkpoint names, so ``state_dict()`` is a
checkpoint ``load_adapter`` reads back. The decoder is never a submodule of the adapter.

Shapes: B = batch, T = condition frames (50 per second), H = heads, Dh = head width,
K = codebooks, S = sequence steps (delay pattern applied; step s meets frame s).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

#: Chord feature width: 12 root one-hot, 12 bass, 12 chord tones, 1 no-chord flag.
CHORD_DIM = 37
#: Piano-roll pitches (MIDI 0..127).
PIANO_DIM = 128
#: Condition frames one adapter window covers (20 s at 50 frames/s, plus one).
MAX_FRAMES = 1001


class CocoMullaAdapter(nn.Module):
    """Trainable adapter parameters (names and shapes as in the authors' checkpoint).

    Args:
        num_layers: adapted decoder layers (the last ``num_layers`` of the decoder).
        start_layer: index of the first adapted decoder layer.
        hidden_size: decoder width.
        latent_dim: width of the piano-roll and drum embeddings (12 in the release).
        max_frames: condition frames covered by the learned positions (1,001).
    """

    def __init__(
        self, *, num_layers: int, start_layer: int, hidden_size: int, latent_dim: int = 12,
        max_frames: int = MAX_FRAMES,
    ) -> None:
        super().__init__()
        if num_layers < 1 or start_layer < 0:
            raise ValueError(f"need num_layers >= 1 and start_layer >= 0, got {num_layers}, {start_layer}")
        self.num_layers = num_layers
        self.start_layer = start_layer
        self.hidden_size = hidden_size
        self.latent_dim = latent_dim
        self.max_frames = max_frames
        cond_dim = CHORD_DIM + 2 * latent_dim
        self.pos_emb = nn.Parameter(torch.zeros(num_layers + 1, max_frames, hidden_size))
        self.masked_embedding = nn.Parameter(torch.zeros(num_layers, max_frames, 2 * latent_dim))
        self.encodec_emb = nn.Linear(hidden_size, latent_dim, bias=False)
        self.merge_linear = nn.ModuleList(nn.Linear(cond_dim, hidden_size, bias=False) for _ in range(num_layers))
        self.piano_roll_emb = nn.ModuleList(nn.Linear(PIANO_DIM, latent_dim, bias=False) for _ in range(num_layers))
        self.gates = nn.Parameter(torch.zeros(num_layers))

    def reset_random(self, generator: torch.Generator | None = None, *, gate: float = 0.5) -> None:
        """Fill every parameter with small random values (for the debug model and training starts).

        Args:
            generator: torch random generator (seeded for reproducible debug models).
            gate: value given to every layer's gate (0 makes the adapter inactive).
        """
        with torch.no_grad():
            for name, param in self.named_parameters():
                if name == "gates":
                    param.fill_(gate)
                elif name in ("pos_emb", "masked_embedding"):
                    param.copy_(torch.randn(param.shape, generator=generator))
                else:  # linear maps: unit-variance outputs for unit-variance inputs
                    param.copy_(torch.randn(param.shape, generator=generator) / param.shape[-1] ** 0.5)


@dataclass
class ConditionStates:
    """Per-layer condition queries/keys/values of one window.

    Attributes:
        qkv: for each adapted layer, ``(q_c, k_c, v_c)`` each (B, H, T, Dh), in the decoder's dtype.
        gates: (num_layers,) adapter gates.
        start_layer: index of the first adapted decoder layer.
        query_frames: steps at or beyond this index use the condition query of frame
            ``query_frames - 1`` (the authors' clamp; equals T for a full forward).
    """

    qkv: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    gates: torch.Tensor
    start_layer: int
    query_frames: int

    @property
    def batch(self) -> int:
        """Batch size the states were computed for."""
        return int(self.qkv[0][0].shape[0])

    def repeated(self, times: int) -> ConditionStates:
        """The states stacked ``times`` over the batch (``[x; x]`` for the two CFG branches)."""
        qkv = [tuple(t.repeat(times, 1, 1, 1) for t in layer) for layer in self.qkv]
        return ConditionStates(qkv, self.gates, self.start_layer, self.query_frames)  # type: ignore[arg-type]


def _heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(B, T, H * Dh) -> (B, H, T, Dh)."""
    return x.view(*x.shape[:2], -1, head_dim).transpose(1, 2)


def _decoder_layers(decoder: Any) -> Any:
    return decoder.model.decoder.layers


def check_conditions(
    chords: torch.Tensor, piano_roll: torch.Tensor, drum_codes: torch.Tensor, cond_mask: torch.Tensor,
    *, num_codebooks: int, max_frames: int,
) -> int:
    """Check the condition tensors' shapes; return the frame count T.

    Raises:
        ValueError: a tensor has the wrong shape, the shapes disagree, or T exceeds ``max_frames``.
    """
    if chords.ndim != 3 or chords.shape[-1] != CHORD_DIM:
        raise ValueError(f"chords must be (batch, frames, {CHORD_DIM}), got {tuple(chords.shape)}")
    batch, frames, _ = chords.shape
    expected = {
        "piano_roll": (piano_roll, (batch, frames, PIANO_DIM)),
        "drum_codes": (drum_codes, (batch, num_codebooks, frames)),
        "cond_mask": (cond_mask, (batch, 2, frames)),
    }
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} to match chords, got {tuple(tensor.shape)}")
    if not 1 <= frames <= max_frames:
        raise ValueError(
            f"conditions have {frames} frames; one adapter window covers 1..{max_frames} "
            "(generate longer sections in windows)"
        )
    return int(frames)


def condition_states(
    decoder: Any, adapter: CocoMullaAdapter, *, chords: torch.Tensor, piano_roll: torch.Tensor,
    drum_codes: torch.Tensor, cond_mask: torch.Tensor, query_frames: int | None = None,
) -> ConditionStates:
    """Run the condition stream once for a window of conditions.

    Args:
        decoder: a ``MusicgenForCausalLM`` (its layers are used frozen, in their own dtype).
        adapter: the adapter parameters (any float dtype; its outputs are cast to the decoder's).
        chords: (B, T, 37) chord frames.
        piano_roll: (B, T, 128) piano roll, 0/1.
        drum_codes: (B, K, T) EnCodec codes of the drums, no delay pattern.
        cond_mask: (B, 2, T), row 0 piano roll, row 1 drums; 1 = present, 0 = use the learned
            masked embedding.
        query_frames: clamp for the condition query index (default T).

    Returns:
        The per-layer condition queries, keys and values.
    """
    layers = _decoder_layers(decoder)
    if adapter.start_layer + adapter.num_layers != len(layers):
        raise ValueError(
            f"adapter covers layers {adapter.start_layer}..{adapter.start_layer + adapter.num_layers - 1} "
            f"but the decoder has {len(layers)} layers"
        )
    num_codebooks = int(decoder.config.num_codebooks)
    frames = check_conditions(
        chords, piano_roll, drum_codes, cond_mask, num_codebooks=num_codebooks, max_frames=adapter.max_frames
    )
    wdtype = adapter.pos_emb.dtype
    ddtype = layers[0].fc1.weight.dtype
    batch = chords.shape[0]
    embed = decoder.model.decoder.embed_tokens
    vocab = int(decoder.config.vocab_size)
    if drum_codes.numel() and not 0 <= int(drum_codes.min()) <= int(drum_codes.max()) < vocab:
        raise ValueError(f"drum_codes must be EnCodec codes in 0..{vocab - 1} (the base model's codebook)")
    drum_sum = sum(embed[k](drum_codes[:, k]) for k in range(num_codebooks))
    drums = adapter.encodec_emb(drum_sum.to(wdtype))  # (B, T, latent)
    piano_on = cond_mask[:, 0, :, None].to(wdtype) > 0
    drums_on = cond_mask[:, 1, :, None].to(wdtype) > 0
    latent = adapter.latent_dim
    stream = adapter.pos_emb[0, :frames].unsqueeze(0).expand(batch, -1, -1).to(ddtype)
    qkv: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for i in range(adapter.num_layers):
        layer = layers[adapter.start_layer + i]
        masked = adapter.masked_embedding[i, :frames].unsqueeze(0)
        piano = torch.where(piano_on, adapter.piano_roll_emb[i](piano_roll.to(wdtype)), masked[..., :latent])
        drum = torch.where(drums_on, drums, masked[..., latent:])
        cond = torch.cat([chords.to(wdtype), piano, drum], dim=-1)
        extra = adapter.merge_linear[i](cond) + adapter.pos_emb[i + 1, :frames].unsqueeze(0)
        attn = layer.self_attn
        normed = layer.self_attn_layer_norm(stream) + extra.to(ddtype)
        q = _heads(attn.q_proj(normed), attn.head_dim)
        k = _heads(attn.k_proj(normed), attn.head_dim)
        v = _heads(attn.v_proj(normed), attn.head_dim)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=attn.scaling)
        stream = stream + attn.out_proj(out.transpose(1, 2).reshape(batch, frames, -1))
        stream = stream + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(stream))))
        qkv.append((q, k, v))
    return ConditionStates(qkv, adapter.gates, adapter.start_layer, query_frames or frames)


def _cache_length(cache: Any, layer_idx: int) -> int | None:
    """Keys in ``cache`` for ``layer_idx`` after the layer's update (None without a cache)."""
    if cache is None:
        return None
    self_cache = getattr(cache, "self_attention_cache", cache)
    return int(self_cache.get_seq_length(layer_idx))


@contextmanager
def attached(decoder: Any, states: ConditionStates) -> Iterator[None]:
    """Within the block, every adapted self-attention of ``decoder`` adds the condition attention.

    Works for a full forward and for incremental decoding with a cache: the current steps are
    ``key_len - query_len .. key_len`` after the cache update. The hooks are removed on exit.
    """
    layers = _decoder_layers(decoder)
    handles = []
    captured: dict[int, torch.Tensor] = {}
    for i, (q_c, k_c, v_c) in enumerate(states.qkv):
        idx = states.start_layer + i
        attn = layers[idx].self_attn

        def keep_query(_mod: nn.Module, _args: Any, output: torch.Tensor, *, idx: int = idx) -> None:
            captured[idx] = output

        def add_condition(
            mod: Any, _args: Any, kwargs: dict[str, Any], output: Any, *, idx: int = idx, i: int = i,
            q_c: torch.Tensor = q_c, k_c: torch.Tensor = k_c, v_c: torch.Tensor = v_c,
        ) -> Any:
            attn_out, weights = output[0], output[1:]
            query = captured.pop(idx)
            batch, steps, _ = query.shape
            if batch != q_c.shape[0]:
                raise ValueError(
                    f"decoder batch {batch} does not match the condition batch {q_c.shape[0]} "
                    "(repeat the condition states for classifier-free guidance)"
                )
            key_len = _cache_length(kwargs.get("cache"), idx)
            start = 0 if key_len is None else key_len - steps
            index = torch.arange(start, start + steps, device=query.device).clamp(max=states.query_frames - 1)
            q = _heads(query, mod.head_dim) + q_c.index_select(2, index)
            dx = F.scaled_dot_product_attention(q, k_c, v_c, scale=mod.scaling)
            dx = dx.transpose(1, 2).reshape(batch, steps, -1)
            gate = states.gates[i].to(attn_out.dtype)
            return (attn_out + gate * F.linear(dx, mod.out_proj.weight), *weights)

        handles.append(attn.q_proj.register_forward_hook(keep_query))
        handles.append(attn.register_forward_hook(add_condition, with_kwargs=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        captured.clear()
