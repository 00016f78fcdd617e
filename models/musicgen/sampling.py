"""Drive ``generate()``: audio prompts, windowed continuation, progress and cancellation.

MusicGen writes 50 codec frames per second and was trained on 30 s windows. Audio longer than
one window is made window by window, each continuing from the last ``context_s`` seconds of
what came before (encoded with the model's own EnCodec and passed as ``decoder_input_ids``);
the first window continues from the caller's prompt audio (the previous section's tail, or the
audio before a regenerated range) when there is one.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.base import CancelToken, ProgressCallback
from models.musicgen.loading import LoadedMusicGen

#: (start_s, end_s) of a window on the song timeline -> chroma (frames, 12) or None.
ChromaFn = Callable[[float, float, np.ndarray | None], np.ndarray | None]

#: Per-window context: ``(window start in song seconds, window frames) -> context manager``.
WindowHook = Callable[[float, int], AbstractContextManager[Any]]

#: Held while a decode draws from torch's global generator (``continue_audio`` seeds it).
GLOBAL_RNG_LOCK = threading.Lock()


@dataclass(frozen=True)
class SamplingOptions:
    """How to sample.

    Attributes:
        window_s: longest audio one generate() call makes, prompt included (seconds).
        context_s: seconds of earlier audio each window continues from.
        guidance_scale: classifier-free guidance (1 disables it).
        top_k: sample among the k most likely codes.
        decoder: "stock" (transformers ``generate()``), "fast"
            (:mod:`models.musicgen.fast_decode`, same codes) or "auto" (see :func:`pick_decoder`).
    """

    window_s: float = 30.0
    context_s: float = 10.0
    guidance_scale: float = 3.0
    top_k: int = 250
    decoder: str = "auto"

    def __post_init__(self) -> None:
        if not 0 <= self.context_s < self.window_s:
            raise ValueError(
                f"context_s={self.context_s} must be at least 0 and shorter than window_s={self.window_s}"
            )
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder {self.decoder!r} is not one of {', '.join(DECODERS)}")


#: Decoder choices: the stock transformers loop, ours, or pick by device.
DECODERS = ("auto", "stock", "fast")


def pick_decoder(choice: str, device: str) -> str:
    """The decoder "auto" means on ``device``: "fast" everywhere.

    Measured on a CPU (benchmarks/bench_musicgen.py, batch 1, CFG 3, text to audio): the fast
    loop is about 2x stock for the debug models (host overhead dominates) and 1.03-1.10x for
    the musicgen-small architecture (4.2 -> 4.6 steps/s with 2 threads and 3 s of audio, where
    reading the weights each step dominates), never slower, so the CPU uses it too; on CUDA it
    adds CUDA-graph replay. MPS runs the same eager fast step as the CPU (not measured: no
    Apple GPU here).
    """
    return "fast" if choice == "auto" else choice


def encode_prompt(lm: LoadedMusicGen, audio: np.ndarray) -> Any:
    """EnCodec codes of prompt audio, shaped as MusicGen's ``decoder_input_ids``.

    Args:
        lm: the loaded model.
        audio: ``(channels, samples)`` at ``lm.sample_rate``; mixed or duplicated to the model's
            channel count.

    Returns:
        LongTensor ``(num_codebooks, frames)`` (stereo models interleave left/right codebooks).
    """
    import torch

    channels = int(lm.model.config.decoder.audio_channels)
    x = audio.mean(axis=0, keepdims=True) if channels == 1 else np.resize(audio, (2, audio.shape[1]))
    enc = lm.model.audio_encoder
    dtype = next(enc.parameters()).dtype
    codes = []
    with torch.inference_mode():
        for ch in range(channels):
            wav = torch.from_numpy(np.ascontiguousarray(x[ch : ch + 1])).to(lm.device, dtype)[None]
            codes.append(enc.encode(wav).audio_codes[0, 0])  # (codebooks, frames)
    stacked = torch.stack(codes, dim=1)  # (codebooks, channels, frames)
    return stacked.reshape(-1, stacked.shape[-1])


def _watch(cancel: CancelToken, report: Callable[[int], None]) -> Any:
    from transformers import StoppingCriteria

    class _Watch(StoppingCriteria):  # type: ignore[misc]
        """Reports each step; raises GenerationCancelled out of generate() when cancelled.

        (Stopping early instead would leave MusicGen's delayed codebooks ragged.)
        """

        def __init__(self) -> None:
            self.steps = 0

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            cancel.check()
            self.steps += 1
            report(self.steps)
            return torch.zeros((input_ids.shape[0],), dtype=torch.bool, device=input_ids.device)

    return _Watch()


def generate_window(
    lm: LoadedMusicGen,
    text: str,
    new_frames: int,
    *,
    prompt: np.ndarray | None,
    chroma: np.ndarray | None,
    options: SamplingOptions,
    cancel: CancelToken,
    on_step: Callable[[int], None],
) -> np.ndarray:
    """One generate() call: continue ``prompt`` by ``new_frames`` codec frames.

    Args:
        lm: the loaded model.
        text: the text prompt.
        new_frames: codec frames to add.
        prompt: ``(channels, samples)`` audio at the model rate, a whole number of frames long, or None.
        chroma: ``(frames, 12)`` chroma covering prompt + new audio (melody models), or None.
        options: sampling settings.
        cancel: stops generation between steps.
        on_step: called with the step number after each step.

    Returns:
        The prompt's decoded audio followed by the new audio, ``(channels, samples)`` float32.
    """
    import torch
    from transformers import StoppingCriteriaList

    model = lm.model
    inputs = lm.tokenizer([text], return_tensors="pt", padding=True)
    kwargs: dict[str, Any] = {k: v.to(lm.device) for k, v in inputs.items()}
    if prompt is not None:
        kwargs["decoder_input_ids"] = encode_prompt(lm, prompt)
    if chroma is not None and lm.melody:
        dtype = next(model.parameters()).dtype
        kwargs["input_features"] = torch.from_numpy(chroma[None]).to(lm.device, dtype)
    delay = int(model.config.decoder.num_codebooks // model.config.decoder.audio_channels) - 1
    # the delay pattern needs 2 * codebooks - 1 positions; shorter calls stay on the stock loop
    if pick_decoder(options.decoder, lm.device) == "fast" and new_frames >= delay:
        return _fast_window(lm, kwargs, new_frames + delay, options, cancel, on_step)
    with torch.inference_mode():
        out = model.generate(
            **kwargs,
            do_sample=True,
            top_k=options.top_k,
            guidance_scale=options.guidance_scale,
            max_new_tokens=new_frames + delay,
            stopping_criteria=StoppingCriteriaList([_watch(cancel, on_step)]),
        )
    cancel.check()
    return out[0].float().cpu().numpy()


def _fast_window(
    lm: LoadedMusicGen, kwargs: dict[str, Any], steps: int, options: SamplingOptions,
    cancel: CancelToken, on_step: Callable[[int], None],
) -> np.ndarray:
    """:func:`generate_window` on :class:`~models.musicgen.fast_decode.FastMusicGenDecoder`."""
    from models.musicgen.fast_decode import FastMusicGenDecoder
    from models.musicgen.token_picking import PickOptions

    def step(n: int) -> None:
        cancel.check()
        on_step(n)

    fast = FastMusicGenDecoder(lm.model)
    codes = fast.generate_codes(
        kwargs["input_ids"], kwargs["attention_mask"], max_new_tokens=steps,
        options=PickOptions(guidance_scale=options.guidance_scale, top_k=options.top_k),
        prompt_codes=kwargs.get("decoder_input_ids"), chroma=kwargs.get("input_features"), on_step=step,
    )
    cancel.check()
    return fast.decode_audio(codes)[0].float().cpu().numpy()


#: Makes one window for every item: ``(new frames, per-item context audio or None, per-item
#: chroma or None, on_step) -> per-item audio`` (the context's decoded audio, then the new audio).
WindowFn = Callable[[int, list[np.ndarray | None], list[np.ndarray | None], Callable[[int], None]], list[np.ndarray]]


def continue_audio(
    lm: LoadedMusicGen,
    text: str,
    duration_s: float,
    *,
    start_s: float,
    prompt: np.ndarray | None,
    chroma_for: ChromaFn,
    options: SamplingOptions,
    seed: int,
    cancel: CancelToken,
    progress: ProgressCallback,
    progress_span: tuple[float, float] = (0.0, 1.0),
    window_hook: WindowHook | None = None,
) -> tuple[np.ndarray, int]:
    """Generate ``duration_s`` seconds (rounded up to whole frames) continuing ``prompt``.

    Args:
        lm: the loaded model.
        text: the text prompt.
        duration_s: seconds of new audio.
        start_s: song time (seconds) where the new audio starts, for the chroma.
        prompt: ``(channels, samples)`` audio at the model rate just before ``start_s``, or None.
        chroma_for: gives the chroma of a song span (and the prompt audio inside it).
        options: sampling settings.
        seed: random seed (same seed and inputs give the same audio).
        cancel: checked between steps.
        progress: progress callback; fractions run over ``progress_span``.
        progress_span: the (start, end) fractions this call reports across.
        window_hook: called as ``window_hook(start_s, frames)`` for each window (song time of
            the window's first frame, prompt included, and its frame count); the window is
            generated inside the context it returns (content-conditioned backends attach
            their per-window conditions here).

    Returns:
        (new audio ``(channels, samples)`` at the model rate, number of windows used).
    """
    import torch

    def one(new: int, contexts: list[np.ndarray | None], chromas: list[np.ndarray | None],
            on_step: Callable[[int], None]) -> list[np.ndarray]:
        return [generate_window(lm, text, new, prompt=contexts[0], chroma=chromas[0], options=options,
                                cancel=cancel, on_step=on_step)]

    with GLOBAL_RNG_LOCK:
        torch.manual_seed(seed)
        made, windows = run_windows(
            lm, 1, duration_s, start_s=start_s, prompt=prompt, chroma_for=chroma_for, options=options,
            cancel=cancel, progress=progress, progress_span=progress_span, window_hook=window_hook,
            make_window=one,
        )
    return made[0], windows


def run_windows(
    lm: LoadedMusicGen,
    items: int,
    duration_s: float,
    *,
    start_s: float,
    prompt: np.ndarray | None,
    chroma_for: ChromaFn,
    options: SamplingOptions,
    cancel: CancelToken,
    progress: ProgressCallback,
    progress_span: tuple[float, float],
    window_hook: WindowHook | None,
    make_window: WindowFn,
) -> tuple[list[np.ndarray], int]:
    """The window schedule of :func:`continue_audio` for ``items`` takes made side by side.

    Every item starts from the same ``prompt`` and has the same windows (so a batch of takes
    can share each window's decode); each continues from its own history. ``make_window``
    makes one window of all items; randomness is its business.

    Returns:
        (per item the new audio ``(channels, samples)`` at the model rate, number of windows used).
    """
    hop, fr = lm.hop, lm.frame_rate
    total = int(math.ceil(duration_s * fr - 1e-9))
    window = max(2, int(options.window_s * fr))
    context = int(options.context_s * fr)
    steps_total = max(1, total + math.ceil(total / max(1, window - context)) * 4)
    made: list[list[np.ndarray]] = [[] for _ in range(items)]
    done, windows, steps_before = 0, 0, 0
    histories: list[np.ndarray | None] = [prompt] * items
    lo, hi = progress_span

    def report(step: int) -> None:
        frac = min(1.0, (steps_before + step) / steps_total)
        progress(lo + (hi - lo) * frac, f"MusicGen: {min(total, done + step)}/{total} frames")

    while done < total:
        cancel.check()
        contexts: list[np.ndarray | None] = []
        for history in histories:
            ctx_audio = None
            if history is not None and context > 0 and history.shape[1] >= hop:
                p = min(context, history.shape[1] // hop)
                ctx_audio = history[:, history.shape[1] - p * hop :]
            contexts.append(ctx_audio)
        first = contexts[0]
        p_frames = 0 if first is None else first.shape[1] // hop
        new = min(window - p_frames, total - done)
        w0 = start_s + done / fr - p_frames / fr
        chromas = [chroma_for(w0, w0 + (p_frames + new) / fr, c) for c in contexts]
        around = nullcontext() if window_hook is None else window_hook(w0, p_frames + new)
        with around:
            outs = make_window(new, contexts, chromas, report)
        for i, out in enumerate(outs):
            piece = out[:, p_frames * hop : (p_frames + new) * hop]
            made[i].append(piece)
            history = histories[i]
            history = piece if history is None else np.concatenate([history, piece], axis=1)
            if context > 0:
                history = history[:, max(0, history.shape[1] - context * hop) :]
            histories[i] = history
        done += new
        windows += 1
        steps_before += new + 4
    return [np.concatenate(m, axis=1) for m in made], windows
