"""Decode windows of concurrent MusicGen calls together: one batch for several callers' windows.

A GPU worker (a Ray Serve replica or ``stembridge worker``) can run several jobs at once on one
loaded :class:`~models.musicgen.generator.MusicGenGenerator`, each job in its own thread. Each
job makes its audio window by window (:func:`~models.musicgen.sampling.run_windows`); a
:class:`WindowCoalescer` shared by those threads collects the windows that reach it at about
the same time and decodes the compatible ones as one :func:`~models.musicgen.batch.generate_batch`
call (on a GPU a decode step of ``B`` items costs little more than one: it is bound by reading
the weights), then hands every caller its own audio.

Waiting, like Ray Serve's ``@serve.batch``: a window waits at most ``wait_s`` seconds (counted
from when it arrived, or from when the decoder last became free if it arrived while another
decode ran) for the windows of other calls in flight, and not at all when every call in
flight already has its window waiting (a call alone never waits). Decodes run one at a time,
in the thread of one waiting caller (the "leader"), oldest window first; the other callers
sleep until their window is done. A decode holds
:data:`~models.musicgen.sampling.GLOBAL_RNG_LOCK` (the stock loop's short windows take it
themselves), so decodes of different models in one process still take turns, as calls did
before coalescing: on CUDA, a graph capture fails while another thread launches work.

Windows merge when they have the same number of new frames, the same prompt length, chroma
of the same shape (or none), the same guidance and top-k, and are long enough for the fast
decoder (:func:`window_key`); texts may differ (padded; the cross-attention mask makes the
padding exact) except on MusicGen-melody, where the text is part of the decoder's prefix and
padding would change it, so melody windows merge only with texts of as many tokens.

Each call is exactly what it would be alone: its random draws come from its own
``torch.Generator`` seeded with its seed (:mod:`models.musicgen.token_picking`), which is the
stream :func:`~models.musicgen.sampling.continue_audio` draws from torch's global generator
seeded the same way, and its codes are decoded to audio on their own. On a CPU (where the tests
check it bit for bit) the audio is the same; on a GPU, batched matrix products may round
differently from a batch of one (as for :mod:`models.musicgen.batch`).

Cancellation and progress stay per call: a waiting caller polls its own cancel token (every
step of a running decode, or every :data:`POLL_S` seconds) and leaves at once, its window
dropped from the queue or its share of a running decode discarded, while the other items go on;
a decode stops early only when every caller in it has cancelled. A leader whose own job is
cancelled while it decodes for others finishes that window first. Progress is reported in each
caller's own thread, with the latest step its window reached.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.base import CancelToken, GenerationCancelled, ProgressCallback
from models.musicgen.batch import generate_batch, stock_window
from models.musicgen.loading import LoadedMusicGen
from models.musicgen.sampling import GLOBAL_RNG_LOCK, ChromaFn, SamplingOptions, run_windows

#: Seconds a waiting caller sleeps between checks of its cancel token while nothing happens.
POLL_S = 0.02

#: Default longest wait (seconds) of a window for the windows of other calls.
DEFAULT_WAIT_S = 0.05

#: Default most items one shared decode holds.
DEFAULT_MAX_BATCH = 8


@dataclass(frozen=True)
class WindowKey:
    """What windows must share to be decoded as one batch.

    Attributes:
        new_frames: codec frames the window adds.
        prompt_shape: ``(channels, samples)`` of the window's prompt audio, or None.
        chroma_shape: ``(frames, 12)`` of its chroma, or None.
        guidance_scale: classifier-free guidance scale.
        top_k: top-k sampling.
        text_tokens: the text's token count on MusicGen-melody (its prefix length), else None.
        stock: too short for the fast decoder's delay pattern: made alone on the stock loop.
    """

    new_frames: int
    prompt_shape: tuple[int, ...] | None
    chroma_shape: tuple[int, ...] | None
    guidance_scale: float
    top_k: int
    text_tokens: int | None
    stock: bool


def window_key(
    lm: LoadedMusicGen, text: str, new_frames: int, prompt: np.ndarray | None, chroma: np.ndarray | None,
    options: SamplingOptions,
) -> WindowKey:
    """The :class:`WindowKey` of one window (see the module doc for why each part matters)."""
    per_channel = int(lm.model.config.decoder.num_codebooks // lm.model.config.decoder.audio_channels)
    use_chroma = chroma is not None and lm.melody
    return WindowKey(
        new_frames=int(new_frames),
        prompt_shape=None if prompt is None else tuple(prompt.shape),
        chroma_shape=tuple(chroma.shape) if use_chroma and chroma is not None else None,
        guidance_scale=float(options.guidance_scale),
        top_k=int(options.top_k),
        text_tokens=len(lm.tokenizer(text)["input_ids"]) if lm.melody else None,
        stock=new_frames < per_channel - 1,
    )


def check_batching(wait_s: float, max_batch: int) -> None:
    """Refuse a negative wait (seconds) or a batch of fewer than one window.

    Raises:
        ValueError: naming the bad option and what it accepts.
    """
    if not wait_s >= 0:
        raise ValueError(f"batch_wait_s={wait_s} must be 0 or more seconds (0: merge only windows already waiting)")
    if max_batch < 1:
        raise ValueError(f"max_batch={max_batch} must be at least 1 window per decode")


class _Request:
    """One caller's window while it waits: its inputs, progress and outcome.

    ``step``, ``done``, ``result``, ``error`` and ``abandoned`` are written by the decoding
    thread (under the coalescer's lock for the outcome) and read by the owner.
    """

    def __init__(
        self, key: WindowKey, text: str, prompt: np.ndarray | None, chroma: np.ndarray | None,
        options: SamplingOptions, generator: Any, cancel: CancelToken, on_step: Callable[[int], None],
    ) -> None:
        self.key = key
        self.text = text
        self.prompt = prompt
        self.chroma = chroma if key.chroma_shape is not None else None
        self.options = options
        self.generator = generator
        self.cancel = cancel
        self.on_step = on_step
        self.arrived = time.monotonic()
        self.wake = threading.Event()
        self.step = 0  # latest decode step reached
        self.reported = 0  # latest step passed to on_step
        self.done = False
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None
        self.abandoned = False  # the owner left (cancelled or failed); its share is discarded

    @property
    def dead(self) -> bool:
        """The owner left or asked to cancel: nothing of this window is wanted any more."""
        return self.abandoned or self.cancel.cancelled

    def report(self) -> None:
        """Pass the latest step to ``on_step`` (call in the owner's thread only)."""
        step = self.step
        if step > self.reported:
            self.reported = step
            self.on_step(step)


class WindowCoalescer:
    """Decodes the windows of concurrent calls on one loaded model, merging compatible ones.

    Use one per loaded model, shared by every thread that generates with it: each call wraps
    its windows in :meth:`session` and makes each window with :meth:`window`
    (:func:`continue_audio_coalesced` does both).

    Args:
        lm: the loaded model.
        wait_s: longest wait (seconds) of a window for the windows of other calls in flight.
        max_batch: most windows one decode holds.

    Raises:
        ValueError: ``wait_s`` negative or ``max_batch`` below 1.
    """

    def __init__(self, lm: LoadedMusicGen, *, wait_s: float = DEFAULT_WAIT_S,
                 max_batch: int = DEFAULT_MAX_BATCH) -> None:
        check_batching(wait_s, max_batch)
        self.lm = lm
        self.wait_s = float(wait_s)
        self.max_batch = int(max_batch)
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._active = 0  # calls inside session()
        self._leading = False  # a thread is gathering or decoding
        self._free_since = 0.0  # monotonic time the last decode ended
        self._sizes: Counter[int] = Counter()

    # -- public ---------------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[None]:
        """Counts one call as in flight while its windows are made (others may wait for it)."""
        with self._cond:
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()  # a gathering leader need not wait for this call any more

    def batch_sizes(self) -> dict[int, int]:
        """How many decodes held how many windows so far: ``{windows per decode: decodes}``."""
        with self._cond:
            return dict(self._sizes)

    def window(
        self,
        text: str,
        new_frames: int,
        *,
        prompt: np.ndarray | None,
        chroma: np.ndarray | None,
        options: SamplingOptions,
        generator: Any,
        cancel: CancelToken,
        on_step: Callable[[int], None],
    ) -> np.ndarray:
        """One window of one call, decoded alone or with other calls' windows.

        Args:
            text: the call's text prompt.
            new_frames: codec frames to add.
            prompt: ``(channels, samples)`` audio at the model rate, a whole number of frames
                long, or None.
            chroma: ``(frames, 12)`` chroma covering prompt + new audio (melody models), or None.
            options: sampling settings (guidance and top-k; the fast decoder is used).
            generator: the call's own ``torch.Generator`` on the model's device; the window's
                random draws advance it as a decode alone would.
            cancel: the call's cancel token.
            on_step: called in this thread with the latest step the window reached.

        Returns:
            The prompt's decoded audio followed by the new audio, ``(channels, samples)`` float32.

        Raises:
            GenerationCancelled: ``cancel`` was cancelled.
            RuntimeError: called outside :meth:`session`.
        """
        with self._cond:
            if self._active < 1:
                raise RuntimeError("WindowCoalescer.window() must run inside session() (it counts calls in flight)")
        req = _Request(window_key(self.lm, text, new_frames, prompt, chroma, options), text, prompt, chroma,
                       options, generator, cancel, on_step)
        with self._cond:
            self._pending.append(req)
            self._cond.notify_all()
        try:
            while True:
                req.wake.clear()
                req.report()
                if req.done:
                    break
                cancel.check()
                with self._cond:
                    lead = not self._leading and bool(self._pending)
                    self._leading = self._leading or lead
                if lead:
                    self._lead(req)
                else:
                    req.wake.wait(POLL_S)
        except BaseException:
            with self._cond:
                req.abandoned = True
                if req in self._pending:
                    self._pending.remove(req)
                    self._cond.notify_all()
            raise
        req.report()
        if req.error is not None:
            raise req.error
        if req.result is None:  # a coalescer bug: done with neither audio nor an error
            raise RuntimeError("a shared MusicGen decode finished without this window's audio")
        return req.result

    # -- the leader -----------------------------------------------------------------------
    def _lead(self, own: _Request) -> None:
        """Gather the oldest window's batch, decode it in this thread, hand out the results."""
        group: list[_Request] = []
        try:
            with self._cond:
                while self._pending:
                    head = self._pending[0]
                    group = [r for r in self._pending if r.key == head.key][: self.max_batch]
                    if head.key.stock:
                        group = [head]
                    deadline = max(head.arrived, self._free_since) + self.wait_s
                    left = deadline - time.monotonic()
                    everyone = len(self._pending) >= self._active  # no other call can still arrive
                    if everyone or len(group) >= self.max_batch or left <= 0 or head.key.stock:
                        break
                    self._cond.wait(left)
                    group = []
                for r in group:
                    self._pending.remove(r)
            if group:
                self._decode(group, own)
        finally:
            with self._cond:
                self._leading = False
                self._free_since = time.monotonic()
                for r in [*self._pending, *group]:
                    r.wake.set()
                self._cond.notify_all()

    def _decode(self, group: list[_Request], own: _Request) -> None:
        """Decode ``group`` as one batch and store each request's audio (or the error)."""

        def step(n: int) -> None:
            alive = False
            for r in group:
                if r.dead:
                    continue
                alive = True
                r.step = n
                if r is own:
                    try:
                        own.report()
                    except BaseException as exc:  # the leader's own job failed: the others go on
                        own.error, own.abandoned = exc, True
                else:
                    r.wake.set()
            if not alive:
                raise GenerationCancelled("every job sharing this decode was cancelled")

        first = group[0]
        key = first.key
        never = CancelToken()  # cancellation is per request, in step()
        outs: list[np.ndarray] = []
        error: BaseException | None = None
        try:
            if key.stock:
                outs = [stock_window(self.lm, first.text, key.new_frames, first.prompt, first.chroma,
                                     first.generator, first.options, never, step)]
            else:
                prompts = None if key.prompt_shape is None else [r.prompt for r in group if r.prompt is not None]
                chromas = None if key.chroma_shape is None else [r.chroma for r in group if r.chroma is not None]
                with GLOBAL_RNG_LOCK:  # one decode at a time in the process, as without coalescing
                    outs = list(generate_batch(
                        self.lm, [r.text for r in group], key.new_frames, prompts=prompts, chromas=chromas,
                        options=first.options, cancel=never, on_step=step,
                        generators=[r.generator for r in group],
                    ))
        except BaseException as exc:  # handed to every caller of the batch, in its own thread
            error = exc
        with self._cond:
            self._sizes[len(group)] += 1
            for i, r in enumerate(group):
                if r.error is None:
                    if r.dead:
                        r.error = GenerationCancelled("the job was cancelled")
                    elif error is not None:
                        r.error = error
                    else:
                        r.result = outs[i]
                r.done = True
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt, SystemExit: the callers were told; the leader stops too


def continue_audio_coalesced(
    lm: LoadedMusicGen,
    coalescer: WindowCoalescer,
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
) -> tuple[np.ndarray, int]:
    """:func:`~models.musicgen.sampling.continue_audio` with every window made by ``coalescer``.

    Same arguments and result as ``continue_audio`` (without a window hook); the call draws
    from its own random generator seeded with ``seed`` instead of torch's global one, so calls
    in other threads can share its decodes and it never holds
    :data:`~models.musicgen.sampling.GLOBAL_RNG_LOCK` for long.

    Returns:
        (new audio ``(channels, samples)`` at the model rate, number of windows used).
    """
    import torch

    generator = torch.Generator(device=lm.device).manual_seed(int(seed))

    def one(new: int, contexts: list[np.ndarray | None], chromas: list[np.ndarray | None],
            on_step: Callable[[int], None]) -> list[np.ndarray]:
        return [coalescer.window(text, new, prompt=contexts[0], chroma=chromas[0], options=options,
                                 generator=generator, cancel=cancel, on_step=on_step)]

    with coalescer.session():
        made, windows = run_windows(
            lm, 1, duration_s, start_s=start_s, prompt=prompt, chroma_for=chroma_for, options=options,
            cancel=cancel, progress=progress, progress_span=progress_span, window_hook=None, make_window=one,
        )
    return made[0], windows
