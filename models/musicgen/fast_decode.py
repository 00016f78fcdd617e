"""Our own MusicGen / MusicGen-melody decoding loop: static KV cache, one-pass CFG, CUDA graphs.

It runs the weights of a loaded transformers model (nothing is copied) and gives the same
codes as stock ``generate()`` (see :mod:`models.musicgen.token_picking` for the sampling
maths and the random stream):

* **Prefill**: the text encoder (and, for melody models, the chroma projection) and one forward
  of the stock decoder over the prompt build the conditioning and the first logits, exactly as
  stock; its cache is then copied into a :class:`~models.musicgen.static_cache.StaticKVCache`.
* **Decode steps** run our own forward over the decoder's modules: the conditional and
  unconditional classifier-free-guidance branches are one batch of ``2B`` rows, keys/values are
  written in place into the static cache, the delay pattern is applied on the device and the
  codes are written into a preallocated ``(B * codebooks, length)`` buffer. Nothing reads a
  tensor back to the host until the loop ends (with CUDA graphs the host only waits, now and
  then, for a step queued :data:`MAX_QUEUED_STEPS` steps earlier).
* **CUDA graphs**: on CUDA, after two warm-up steps on a side stream, the whole step (forward,
  CFG mixing, top-k, sampling, delay pattern, cache and code writes, position increment) is
  captured once and replayed for the remaining steps ("graph" mode). On CPU (and MPS) graph
  capture is skipped (graphs are a CUDA feature) and the "eager" step runs: it slices the cache
  to the filled length, which is faster on a CPU and numerically identical to stock. The
  capturable step itself ("static" mode: position on the device, fixed shapes) runs on any
  device, so the tests exercise on a CPU the code the graph captures.
* **torch.compile** ("compiled" mode, opt-in, for comparison): the capturable step's forward
  compiled by ``torch.compile`` (``mode="reduce-overhead"`` on CUDA, which captures inductor's
  own CUDA graphs; the default mode elsewhere), with the cache buffers and weights marked as
  static addresses so the cache is written in place. Picking stays eager (inductor draws random
  numbers its own way, which would break seed-exactness). Measured on the development CPU
  (torch 2.13, float32, ``bench_musicgen.py --mode eager compiled``): no faster than "eager"
  (debug model 922 vs 982 steps/s with 1 thread; the musicgen-small architecture 8.3 vs 10.3
  steps/s with 2 threads) after a first compile of 33 s (debug) to 48 s (small), so it is never
  chosen automatically. ``bench_musicgen.py --mode graph compiled`` compares it with "graph" on
  a GPU, where the issue's choice between the two is to be made.

Several sections or variations of one request decode together as one batch: pass ``B`` texts
(and ``B`` prompts of one length) to :meth:`FastMusicGenDecoder.generate_codes`.

Hook points (for adapters such as Coco-Mulla, which must run on this same path): every decode
step goes through :meth:`FastMusicGenDecoder._layer` once per transformer layer, which calls
:meth:`~FastMusicGenDecoder._self_attention`, :meth:`~FastMusicGenDecoder._cross_attention`
and :meth:`~FastMusicGenDecoder._feed_forward` in turn with the layer index and the
layer-normed ``(rows, 1, hidden)`` hidden state (self-attention also gets the step position).
An adapter subclasses the decoder and overrides one of them (e.g. adds per-layer prefix
keys/values in ``_self_attention``, or its own attention of the step's queries in
:meth:`~FastMusicGenDecoder._attention_output`, as :mod:`models.cocomulla.fast` does); the
prefill is :meth:`~FastMusicGenDecoder._prefill`.
The overrides stay graph-capturable as long as they use no host values that change between
steps.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from models.musicgen.static_cache import StaticKVCache
from models.musicgen.token_picking import PickOptions, pick

log = logging.getLogger(__name__)

#: Eager steps run before a CUDA graph is captured (cuBLAS workspaces, allocator warm-up).
WARMUP_STEPS = 2

#: Graph replays the host may queue ahead of the GPU: bounds how far progress reports and
#: cancellation checks run ahead of the real decoding, without a synchronisation per step.
MAX_QUEUED_STEPS = 32

#: Cache capacity is a multiple of this many positions, so the attention mask of the static
#: step keeps the alignment the fused CUDA attention kernels want.
CACHE_ALIGN = 64

#: How decode steps run; see :class:`FastMusicGenDecoder`.
STEP_MODES = ("eager", "static", "graph", "compiled")


def graph_capture_available(device: Any) -> tuple[bool, str]:
    """Whether the decode step can be captured in a CUDA graph on ``device``, and why not."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        return False, f"CUDA graphs need a CUDA device; {dev.type} runs the eager step"
    if not torch.cuda.is_available():
        return False, "torch reports no CUDA device"
    return True, "CUDA device"


@dataclass(frozen=True)
class _LayerWeights:
    """One decoder layer's parameters, looked up once (module calls cost host time per step).

    Norms are ``(weight, bias, eps)``; linears are ``(weight, bias)``; ``cross`` is None for
    melody models (no cross-attention).
    """

    norm1: tuple[Any, Any, float]
    q: tuple[Any, Any]
    k: tuple[Any, Any]
    v: tuple[Any, Any]
    out: tuple[Any, Any]
    heads: int
    scaling: float
    cross: tuple[tuple[Any, Any, float], tuple[Any, Any], tuple[Any, Any], float] | None
    norm3: tuple[Any, Any, float]
    fc1: tuple[Any, Any]
    fc2: tuple[Any, Any]
    activation: Callable[[Any], Any]

    @classmethod
    def of(cls, layer: Any) -> _LayerWeights:
        def lin(m: Any) -> tuple[Any, Any]:
            return m.weight, m.bias

        def norm(m: Any) -> tuple[Any, Any, float]:
            return m.weight, m.bias, float(m.eps)

        attn = layer.self_attn
        cross = None
        if hasattr(layer, "encoder_attn"):
            ea = layer.encoder_attn
            cross = (norm(layer.encoder_attn_layer_norm), lin(ea.q_proj), lin(ea.out_proj), float(ea.scaling))
        return cls(
            norm(layer.self_attn_layer_norm), lin(attn.q_proj), lin(attn.k_proj), lin(attn.v_proj),
            lin(attn.out_proj), int(attn.num_heads), float(attn.scaling), cross, norm(layer.final_layer_norm),
            lin(layer.fc1), lin(layer.fc2), layer.activation_fn,
        )


class FastMusicGenDecoder:
    """Decode MusicGen or MusicGen-melody codes with a static cache and optional CUDA graphs.

    Args:
        model: a ``MusicgenForConditionalGeneration`` or ``MusicgenMelodyForConditionalGeneration``
            in eval mode, already on its device and dtype (the decoder keeps references to its
            parameters; build a new decoder after moving the model).
        mode: how steps run (:data:`STEP_MODES`): "eager" (host-side position, the cache sliced
            to the filled length), "static" (the capturable step: position on the device,
            fixed shapes, attention masked over the whole cache, no graph), "graph" ("static"
            captured in a CUDA graph after warm-up), "compiled" ("static" with its forward
            compiled by ``torch.compile``; the first call of each new cache length compiles,
            tens of seconds). None: "graph" on CUDA, else "eager".

    Raises:
        ValueError: unknown mode, or "graph" on a device without CUDA graphs (the message says why).
    """

    def __init__(self, model: Any, *, mode: str | None = None) -> None:
        self.model = model
        self.melody = hasattr(model.config, "num_chroma")
        self.lm = model.decoder  # MusicgenForCausalLM / MusicgenMelodyForCausalLM
        self.core = self.lm.model.decoder
        self.num_codebooks = int(self.lm.num_codebooks)
        self.device = next(model.parameters()).device
        able, why = graph_capture_available(self.device)
        if mode is not None and mode not in STEP_MODES:
            raise ValueError(f"step mode {mode!r} is not one of {', '.join(STEP_MODES)}")
        if mode == "graph" and not able:
            raise ValueError(f"CUDA-graph decoding is not possible here: {why}")
        self.mode = mode or ("graph" if able else "eager")
        if self.mode != "graph":
            log.debug("fast MusicGen decoder in %s mode: %s", self.mode, why)
        self._weights = [_LayerWeights.of(layer) for layer in self.core.layers]
        self._embeds = [e.weight for e in self.core.embed_tokens]
        self._final_norm = (self.core.layer_norm.weight, self.core.layer_norm.bias, float(self.core.layer_norm.eps))
        self._heads = [(h.weight, h.bias) for h in self.lm.lm_heads]
        gen = model.generation_config
        dec = model.config.decoder
        self.start_id = int(gen.decoder_start_token_id if gen.decoder_start_token_id is not None else dec.bos_token_id)
        self.pad_id = int(gen.pad_token_id if gen.pad_token_id is not None else dec.pad_token_id)
        self._compiled_forward: Callable[[Any, int | None], Any] | None = None

    # -- public -------------------------------------------------------------------------------
    def generate_codes(
        self,
        text_ids: Any,
        text_mask: Any,
        *,
        max_new_tokens: int,
        options: PickOptions,
        prompt_codes: Any | None = None,
        chroma: Any | None = None,
        on_step: Callable[[int], None] | None = None,
        generators: Sequence[Any] | None = None,
    ) -> Any:
        """Decode codes for ``B`` texts (one batch; the CFG branches double it to ``2B`` rows).

        Args:
            text_ids: ``(B, text_len)`` token ids of the text prompts (padded).
            text_mask: ``(B, text_len)`` 0/1 attention mask of ``text_ids``.
            max_new_tokens: decode steps, as stock ``generate(max_new_tokens=...)``: codec frames
                to add plus ``codebooks - 1`` for the delay pattern.
            options: guidance, top-k, temperature, greedy.
            prompt_codes: ``(B * codebooks, frames)`` codes to continue (one length for all B),
                or None.
            chroma: ``(B, chroma_frames, 12)`` chroma for melody models, or None.
            on_step: called with the step number (1-based) after each step is queued (with CUDA
                graphs at most :data:`MAX_QUEUED_STEPS` ahead of the device); may raise to cancel.
            generators: ``B`` ``torch.Generator`` (one per text, on the model's device) that
                sample each item's codes, so item ``i`` gets the codes a batch of one gets with
                torch's global generator in the state of ``generators[i]``; None: torch's
                global generator for the whole batch (the codes stock ``generate()`` gives).

        Returns:
            LongTensor ``(B, codebooks, frames)``: prompt codes followed by the new ones, delay
            pattern undone (stock ``generate()``'s codes before the EnCodec decode).

        Raises:
            ValueError: bad sizes (too few steps for the delay pattern, mismatched prompt rows,
                a generator count other than ``B``).
        """
        import torch

        batch = int(text_ids.shape[0])
        if generators is not None and len(generators) != batch:
            raise ValueError(f"{len(generators)} random generators for {batch} texts; give one per text")
        k = self.num_codebooks
        start = torch.full((batch * k, 1), self.start_id, dtype=torch.long, device=self.device)
        if prompt_codes is None:
            ids = start
        else:
            if prompt_codes.shape[0] != batch * k:
                raise ValueError(
                    f"prompt_codes has {prompt_codes.shape[0]} rows; {batch} texts x {k} codebooks need {batch * k}"
                )
            ids = prompt_codes.to(self.device)
            if bool((ids[:, 0] != self.start_id).all()):
                ids = torch.cat([start, ids], dim=-1)
        channels = int(self.model.config.decoder.audio_channels)
        per_channel = k // channels
        total = ids.shape[-1] + int(max_new_tokens)
        if max_new_tokens < 1 or total < 2 * per_channel - 1:
            raise ValueError(
                f"max_new_tokens={max_new_tokens} is too few for the {per_channel}-codebook delay pattern; "
                f"ask for at least {max(1, 2 * per_channel - 1 - ids.shape[-1])} steps"
            )
        text_ids, text_mask = text_ids.to(self.device), text_mask.to(self.device)
        with torch.inference_mode():
            first, pattern = self.lm.build_delay_pattern_mask(ids, pad_token_id=self.start_id, max_length=total)
            try:
                codes = self._decode(first, pattern, text_ids, text_mask, chroma, options, on_step, generators)
            finally:
                self._release()
            codes = self.lm.apply_delay_pattern_mask(codes, pattern)
            return codes[codes != self.pad_id].reshape(batch, k, -1)

    def decode_audio(self, codes: Any) -> Any:
        """EnCodec audio of ``(B, codebooks, frames)`` codes -> ``(B, channels, samples)``."""
        import torch

        enc = self.model.audio_encoder
        scales = [None] * int(codes.shape[0])
        with torch.inference_mode():
            if int(self.model.config.decoder.audio_channels) == 1:
                return enc.decode(codes[None], audio_scales=scales).audio_values
            left = enc.decode(codes[None, :, ::2], audio_scales=scales).audio_values
            right = enc.decode(codes[None, :, 1::2], audio_scales=scales).audio_values
            return torch.cat([left, right], dim=1)

    # -- the loop -----------------------------------------------------------------------------
    def _decode(
        self, first: Any, pattern: Any, text_ids: Any, text_mask: Any, chroma: Any | None,
        options: PickOptions, on_step: Callable[[int], None] | None, generators: Sequence[Any] | None,
    ) -> Any:
        start_len, total = int(first.shape[-1]), int(pattern.shape[-1])
        rows_ids = first.repeat((2, 1)) if options.cfg else first
        logits, cache = self._prefill(rows_ids, text_ids, text_mask, chroma, options, capacity_tokens=total)
        self._cache = cache
        if self.mode == "compiled":
            self._mark_static(cache.keys, cache.values, cache.cross_keys, cache.cross_values, cache.cross_bias)
        self._offset = cache.length - start_len  # conditioning prefix ahead of the codes (melody)
        self._options = options
        self._generators = generators
        self._pattern = pattern
        tokens = pattern.clone()
        nxt = self._apply_pattern(pick(logits, options, generators), pattern[:, start_len])
        tokens[:, start_len] = nxt
        if on_step:
            on_step(1)
        steps = total - start_len  # codes to pick; the first came from the prefill
        if self.mode in ("static", "compiled") or (self.mode == "graph" and steps - 1 > WARMUP_STEPS):
            self._run_static(tokens, nxt, start_len, steps, on_step, capture=self.mode == "graph")
        else:
            for t in range(start_len, total - 1):
                logits = self._forward_step(nxt, t)
                nxt = self._apply_pattern(pick(logits, options, generators), pattern[:, t + 1])
                tokens[:, t + 1] = nxt
                if on_step:
                    on_step(t + 2 - start_len)
        return tokens

    def _run_static(
        self, tokens: Any, nxt: Any, start_len: int, steps: int, on_step: Callable[[int], None] | None,
        *, capture: bool,
    ) -> None:
        """Steps 2..``steps`` with the capturable step; with ``capture``, warm up eagerly on a
        side stream, capture one step in a CUDA graph and replay it for the rest."""
        import torch

        self._tokens = tokens
        self._cur = nxt.clone()
        self._pos = torch.tensor(start_len, dtype=torch.long, device=self.device)
        self._slots = torch.arange(self._cache.capacity, device=self.device)
        done = 1
        if not capture:
            for _ in range(steps - done):
                self._graph_step()
                done += 1
                if on_step:
                    on_step(done)
            return
        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self._graph_step()
                done += 1
                if on_step:
                    on_step(done)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        for gen in self._generators or ():
            graph.register_generator_state(gen)  # replays advance each item's own random stream
        with torch.cuda.graph(graph):
            self._graph_step()
        queued: deque[Any] = deque()
        for _ in range(steps - done):
            graph.replay()
            mark = torch.cuda.Event()
            mark.record()
            queued.append(mark)
            if len(queued) > MAX_QUEUED_STEPS:
                queued.popleft().synchronize()  # waits for a step long done queueing: the GPU stays busy
            done += 1
            if on_step:
                on_step(done)

    def _graph_step(self) -> None:
        """One step with every varying value on the device (capturable): feed ``_cur`` at ``_pos``."""
        forward = self._static_forward() if self.mode == "compiled" else self._forward_step
        logits = forward(self._cur, None)
        col = self._pos + 1
        pat = self._pattern.index_select(1, col.view(1)).squeeze(1)
        nxt = self._apply_pattern(pick(logits, self._options, self._generators), pat)
        self._tokens.index_copy_(1, col.view(1), nxt[:, None])
        self._cur.copy_(nxt)
        self._pos.add_(1)

    def _static_forward(self) -> Callable[[Any, int | None], Any]:
        """:meth:`_forward_step` compiled once per decoder (recompiled by torch for new shapes)."""
        if self._compiled_forward is None:
            import torch

            self._mark_static(*self._static_weights())
            compile_mode = "reduce-overhead" if self.device.type == "cuda" else "default"
            self._compiled_forward = torch.compile(self._forward_step, mode=compile_mode)
        return self._compiled_forward

    def _static_weights(self) -> list[Any]:
        """Every weight tensor the step reads (marked static for the compiled step): the
        decoder's parameters and its sinusoidal position table."""
        return [*self.lm.parameters(), self.core.embed_positions.weights]

    @staticmethod
    def _mark_static(*tensors: Any) -> None:
        """Tell torch.compile these tensors keep their address (written in place, not copied)."""
        import torch

        for t in tensors:
            if t is not None:
                torch._dynamo.mark_static_address(t)

    def _release(self) -> None:
        """Drop the per-call state (the cache is the largest allocation of a decode)."""
        for name in ("_cache", "_generators", "_pattern", "_tokens", "_cur", "_pos", "_slots"):
            self.__dict__.pop(name, None)

    @staticmethod
    def _apply_pattern(picked: Any, column: Any) -> Any:
        """Codes where the delay pattern leaves a gap (-1); its fixed values elsewhere."""
        import torch

        return torch.where(column == -1, picked, column)

    # -- prefill ------------------------------------------------------------------------------
    def _prefill(
        self, rows_ids: Any, text_ids: Any, text_mask: Any, chroma: Any | None, options: PickOptions,
        *, capacity_tokens: int,
    ) -> tuple[Any, StaticKVCache]:
        """Conditioning + one stock decoder forward over the start codes; its cache made static.

        Returns:
            (last-position logits ``(rows * codebooks, vocab)``, the static cache).
        """
        if self.melody:
            prefix = self._melody_prefix(text_ids, text_mask, chroma, options.cfg)
            out = self.lm(input_ids=rows_ids, encoder_hidden_states=prefix, use_cache=True)
            enc_mask = None
            capacity = capacity_tokens + int(prefix.shape[1])
        else:
            states, enc_mask = self._text_states(text_ids, text_mask, options.cfg)
            out = self.lm(
                input_ids=rows_ids, encoder_hidden_states=states, encoder_attention_mask=enc_mask, use_cache=True
            )
            capacity = capacity_tokens
        capacity = -(-capacity // CACHE_ALIGN) * CACHE_ALIGN
        cache = StaticKVCache.from_prefill(out.cache, capacity, encoder_mask=enc_mask)
        return out.logits[:, -1], cache

    def _text_states(self, text_ids: Any, text_mask: Any, cfg: bool) -> tuple[Any, Any]:
        """MusicGen cross-attention source: T5 states (zeros for the unconditional half), projected."""
        import torch

        model = self.model
        states = model.text_encoder(input_ids=text_ids, attention_mask=text_mask).last_hidden_state
        mask = text_mask
        if cfg:
            states = torch.cat([states, torch.zeros_like(states)], dim=0)
            mask = torch.cat([mask, torch.zeros_like(mask)], dim=0)
        dec = model.config.decoder
        if model.text_encoder.config.hidden_size != dec.hidden_size and dec.cross_attention_hidden_size is None:
            states = model.enc_to_dec_proj(states)
        return states * mask[..., None], mask

    def _melody_prefix(self, text_ids: Any, text_mask: Any, chroma: Any | None, cfg: bool) -> Any:
        """MusicGen-melody prefix: projected chroma (null chroma for the unconditional half) + text states."""
        import torch

        model = self.model
        states = model.text_encoder(input_ids=text_ids, attention_mask=text_mask).last_hidden_state
        if model.text_encoder.config.hidden_size != model.decoder.config.hidden_size:
            states = model.enc_to_dec_proj(states)
        mask = text_mask
        if cfg:
            states = torch.cat([states, torch.zeros_like(states)], dim=0)
            mask = torch.cat([mask, torch.zeros_like(mask)], dim=0)
        states = states * mask[..., None]
        batch = int(text_ids.shape[0])
        dtype = next(model.parameters()).dtype
        if chroma is not None:
            audio = chroma.to(self.device, dtype)
            null = torch.zeros_like(audio)
        else:
            null = torch.zeros((batch, 1, model.config.num_chroma), device=self.device, dtype=dtype)
            audio = None
        null[:, :, 0] = 1
        audio = null if audio is None else audio
        if cfg:
            audio = torch.cat([audio, null], dim=0)
        if model.config.num_chroma != model.decoder.config.hidden_size:
            audio = model.audio_enc_to_dec_proj(audio)
        length = int(model.config.chroma_length)
        if audio.shape[1] < length:
            audio = audio.repeat(1, math.ceil(length / audio.shape[1]), 1)
        return torch.cat([audio[:, :length], states], dim=1)

    # -- one step -----------------------------------------------------------------------------
    def _forward_step(self, codes: Any, pos: int | None) -> Any:
        """Logits ``(rows * codebooks, vocab)`` after feeding one code per codebook.

        Args:
            codes: ``(B * codebooks,)`` the codes at sequence index ``pos`` (the CFG half is
                duplicated here).
            pos: sequence index of ``codes`` (eager), or None to read it from ``self._pos``
                (graph-capturable).
        """
        import torch
        import torch.nn.functional as F  # noqa: N812

        k = self.num_codebooks
        rows_codes = codes.repeat(2) if self._options.cfg else codes
        ids = rows_codes.view(-1, k, 1)
        hidden: Any = sum(F.embedding(ids[:, c], self._embeds[c]) for c in range(k))  # stock's order
        weights = self.core.embed_positions.weights
        if pos is not None:
            position = weights[self._offset + pos].view(1, 1, -1)
        else:
            position = weights.index_select(0, (self._pos + self._offset).view(1)).view(1, 1, -1)
        h = hidden + position.to(hidden.dtype)
        valid = None if pos is not None else (self._slots <= self._pos + self._offset).view(1, 1, 1, -1)
        for i in range(len(self._weights)):
            h = self._layer(i, h, pos, valid)
        h = _norm(h, self._final_norm)
        logits = [F.linear(h, w, b) for w, b in self._heads]
        return torch.stack(logits, dim=1).reshape(-1, logits[0].shape[-1])

    def _layer(self, i: int, h: Any, pos: int | None, valid: Any | None) -> Any:
        """One transformer layer on ``(rows, 1, hidden)``: the per-layer hook point."""
        w = self._weights[i]
        h = h + self._self_attention(i, _norm(h, w.norm1), pos, valid)
        if w.cross is not None:
            h = h + self._cross_attention(i, _norm(h, w.cross[0]))
        return h + self._feed_forward(i, _norm(h, w.norm3))

    def _self_attention(self, i: int, x: Any, pos: int | None, valid: Any | None) -> Any:
        """Causal self-attention of one new position over the static cache (written in place)."""
        import torch.nn.functional as F  # noqa: N812

        w = self._weights[i]
        rows = x.shape[0]
        q = F.linear(x, *w.q).view(rows, 1, w.heads, -1).transpose(1, 2)
        k = F.linear(x, *w.k).view(rows, 1, w.heads, -1).transpose(1, 2)
        v = F.linear(x, *w.v).view(rows, 1, w.heads, -1).transpose(1, 2)
        cache = self._cache
        if pos is not None:
            slot = self._offset + pos
            cache.keys[i, :, :, slot] = k[:, :, 0]
            cache.values[i, :, :, slot] = v[:, :, 0]
            keys, values = cache.keys[i, :, :, : slot + 1], cache.values[i, :, :, : slot + 1]
        else:
            slot_t = (self._pos + self._offset).view(1)
            cache.keys[i].index_copy_(2, slot_t, k)
            cache.values[i].index_copy_(2, slot_t, v)
            keys, values = cache.keys[i], cache.values[i]
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=valid, scale=w.scaling)
        return self._attention_output(i, q, out, pos)

    def _attention_output(self, i: int, q: Any, out: Any, pos: int | None) -> Any:
        """Output projection of the self-attention: the hook point for attention adapters.

        Args:
            i: layer index.
            q: ``(rows, heads, 1, head_dim)`` the step's queries (an adapter may attend with them).
            out: ``(rows, heads, 1, head_dim)`` the attention over the cache.
            pos: as in :meth:`_forward_step` (None: read the position from ``self._pos``).

        Returns:
            ``(rows, 1, hidden)`` what the layer adds to its residual stream.
        """
        import torch.nn.functional as F  # noqa: N812

        w = self._weights[i]
        return F.linear(out.transpose(1, 2).reshape(out.shape[0], 1, -1), *w.out)

    def _cross_attention(self, i: int, x: Any) -> Any:
        """Attention over the fixed text states (plain MusicGen)."""
        import torch.nn.functional as F  # noqa: N812

        w = self._weights[i]
        cross: Any = w.cross  # not None: _layer only calls this for layers with cross-attention
        cache = self._cache
        keys: Any = cache.cross_keys
        values: Any = cache.cross_values
        rows = x.shape[0]
        q = F.linear(x, *cross[1]).view(rows, 1, w.heads, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, keys[i], values[i], attn_mask=cache.cross_bias, scale=cross[3])
        return F.linear(out.transpose(1, 2).reshape(rows, 1, -1), *cross[2])

    def _feed_forward(self, i: int, x: Any) -> Any:
        """The layer's feed-forward block."""
        import torch.nn.functional as F  # noqa: N812

        w = self._weights[i]
        return F.linear(w.activation(F.linear(x, *w.fc1)), *w.fc2)


def _norm(x: Any, params: tuple[Any, Any, float]) -> Any:
    """Layer norm over the last dimension with ``(weight, bias, eps)``."""
    import torch.nn.functional as F  # noqa: N812

    weight, bias, eps = params
    return F.layer_norm(x, weight.shape, weight, bias, eps)
