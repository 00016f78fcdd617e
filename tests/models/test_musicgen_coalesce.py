"""Concurrent MusicGen calls share window decodes, and each still gets its seed's audio exactly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from models.base import CancelToken, GenerationCancelled  # noqa: E402
from models.musicgen.coalesce import WindowCoalescer, continue_audio_coalesced, window_key  # noqa: E402
from models.musicgen.loading import LoadedMusicGen, load_debug  # noqa: E402
from models.musicgen.sampling import SamplingOptions, continue_audio  # noqa: E402

pytestmark = [pytest.mark.neural, pytest.mark.usefixtures("one_torch_thread")]

#: 1 s windows (50 frames) continuing from 0.4 s (20 frames): 2 s are windows of 50, 30, 20 new frames.
OPTIONS = SamplingOptions(window_s=1.0, context_s=0.4)

#: Long enough that a merge never depends on thread timing: callers leave the wait when all are in.
PATIENT_S = 20.0


@pytest.fixture(scope="module")
def plain() -> LoadedMusicGen:
    return load_debug(melody=False, device="cpu")


@pytest.fixture(scope="module")
def melody() -> LoadedMusicGen:
    return load_debug(melody=True, device="cpu")


@dataclass
class Call:
    """One caller's request and what it saw."""

    text: str
    seed: int
    duration_s: float = 2.0
    prompt: np.ndarray | None = None
    chroma_seed: int | None = None  # melody: a random chroma per window from this seed
    cancel_at: float | None = None  # cancel its own token once progress passes this fraction
    token: CancelToken = field(default_factory=CancelToken)
    fractions: list[float] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)
    result: np.ndarray | None = None
    windows: int = 0
    error: BaseException | None = None

    def chroma_for(self, lm: LoadedMusicGen) -> Callable[[float, float, Any], np.ndarray | None]:
        def chroma(a: float, b: float, p: Any) -> np.ndarray | None:
            if self.chroma_seed is None:
                return None
            frames = int(round((b - a) * lm.chroma_rate))
            rng = np.random.default_rng([self.chroma_seed, int(round(a * 1000)) + 10**6])  # a < 0 before the song
            return rng.random((frames, 12)).astype(np.float32)

        return chroma

    def progress(self, fraction: float, message: str) -> None:
        self.fractions.append(fraction)
        self.threads.add(threading.get_ident())
        if self.cancel_at is not None and fraction > self.cancel_at:
            self.token.cancel()


def solo(lm: LoadedMusicGen, call: Call) -> tuple[np.ndarray, int]:
    """What the call makes alone, on torch's global generator (the path without coalescing)."""
    return continue_audio(lm, call.text, call.duration_s, start_s=0.0, prompt=call.prompt,
                          chroma_for=call.chroma_for(lm), options=OPTIONS, seed=call.seed, cancel=CancelToken(),
                          progress=lambda f, m: None)


def run_together(lm: LoadedMusicGen, calls: list[Call], coalescer: WindowCoalescer) -> None:
    """Every call in its own thread; all are in flight before the first window reaches the coalescer."""
    ready = threading.Barrier(len(calls))

    def work(call: Call) -> None:
        chroma = call.chroma_for(lm)
        first = [True]

        def gated(a: float, b: float, p: Any) -> np.ndarray | None:
            if first[0]:  # inside the session: wait until every call has one
                first[0] = False
                ready.wait(timeout=30)
            return chroma(a, b, p)

        try:
            call.result, call.windows = continue_audio_coalesced(
                lm, coalescer, call.text, call.duration_s, start_s=0.0, prompt=call.prompt, chroma_for=gated,
                options=OPTIONS, seed=call.seed, cancel=call.token, progress=call.progress,
            )
        except BaseException as exc:
            call.error = exc

    threads = [threading.Thread(target=work, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a coalesced call hung"


def noise(lm: LoadedMusicGen, frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((1, frames * lm.hop))).astype(np.float32)


def assert_solo(lm: LoadedMusicGen, call: Call) -> None:
    assert call.error is None, call.error
    ref, windows = solo(lm, call)
    assert call.result is not None and call.result.shape == ref.shape
    np.testing.assert_array_equal(call.result, ref)
    assert call.windows == windows


def test_a_call_alone_is_continue_audio_and_never_waits(plain: LoadedMusicGen) -> None:
    coalescer = WindowCoalescer(plain, wait_s=PATIENT_S)
    call = Call("funk", seed=5, prompt=noise(plain, 30, 1))
    start = time.monotonic()
    run_together(plain, [call], coalescer)
    assert time.monotonic() - start < PATIENT_S / 2  # no window waited for a batch
    assert_solo(plain, call)
    assert coalescer.batch_sizes() == {1: call.windows}
    assert call.fractions == sorted(call.fractions) and call.fractions[-1] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("count", [2, 3])
def test_concurrent_calls_share_decodes_and_keep_their_audio(plain: LoadedMusicGen, count: int) -> None:
    """Different texts (of different token counts), seeds and previous audio, decoded as one batch."""
    calls = [
        Call("funk", seed=3, prompt=noise(plain, 30, 10)),
        Call("slow ambient pads with a long reverb tail", seed=8, prompt=noise(plain, 30, 11)),
        Call("rock", seed=3, prompt=noise(plain, 30, 12)),
    ][:count]
    assert len(plain.tokenizer(calls[0].text)["input_ids"]) != len(plain.tokenizer(calls[1].text)["input_ids"])
    coalescer = WindowCoalescer(plain, wait_s=PATIENT_S)
    run_together(plain, calls, coalescer)
    for call in calls:
        assert_solo(plain, call)
        assert len(call.threads) == 1  # progress came in the caller's own thread
        assert call.fractions == sorted(call.fractions) and call.fractions[-1] > 0.9
    assert coalescer.batch_sizes() == {count: calls[0].windows}  # every window decoded by all together
    assert not np.array_equal(np.asarray(calls[0].result), np.asarray(calls[1].result))


def test_windows_of_different_lengths_are_not_merged(plain: LoadedMusicGen) -> None:
    """A fresh start (no prompt) beside continuations, and a shorter call with a 2-frame stock window."""
    calls = [
        Call("funk", seed=1, prompt=noise(plain, 30, 20)),  # windows of 30, 30, 30, 10 new frames
        Call("jazz", seed=2, duration_s=52 / 50),  # no prompt: 50 new frames, then 2 (stock loop)
        Call("house", seed=3, prompt=noise(plain, 30, 21)),
    ]
    coalescer = WindowCoalescer(plain, wait_s=PATIENT_S)
    seen: list[tuple[int, ...]] = []
    original = coalescer._decode

    def spy(group: list[Any], own: Any) -> None:
        seen.append(tuple(sorted(calls.index(next(c for c in calls if c.text == r.text)) for r in group)))
        assert len({r.key for r in group}) == 1
        original(group, own)

    coalescer._decode = spy  # type: ignore[method-assign]
    run_together(plain, calls, coalescer)
    for call in calls:
        assert_solo(plain, call)
    assert all(1 not in group or group == (1,) for group in seen)  # the prompt-less call always alone
    assert (0, 2) in seen  # the two continuations did merge


def test_melody_chroma_per_call_and_texts_of_other_lengths_decode_apart(melody: LoadedMusicGen) -> None:
    texts = ["funk bass", "rock drums", "jazz keys"]
    tokens = [len(melody.tokenizer(t)["input_ids"]) for t in texts]
    assert tokens[0] == tokens[2] != tokens[1]  # the melody prefix holds the text: padding would change it
    calls = [Call(t, seed=4 + i, chroma_seed=i, prompt=noise(melody, 30, 30 + i)) for i, t in enumerate(texts)]
    coalescer = WindowCoalescer(melody, wait_s=PATIENT_S)
    run_together(melody, calls, coalescer)
    for call in calls:
        assert_solo(melody, call)
    assert coalescer.batch_sizes() == {2: calls[0].windows, 1: calls[1].windows}


@pytest.mark.parametrize("cancelled", [0, 1])
def test_a_cancelled_call_leaves_and_the_others_go_on(plain: LoadedMusicGen, cancelled: int) -> None:
    calls = [Call(f"groove {i}", seed=20 + i, prompt=noise(plain, 30, 40 + i)) for i in range(3)]
    calls[cancelled].cancel_at = 0.3
    coalescer = WindowCoalescer(plain, wait_s=PATIENT_S)
    run_together(plain, calls, coalescer)
    gone = calls[cancelled]
    assert isinstance(gone.error, GenerationCancelled) and gone.result is None
    assert 0.3 < gone.fractions[-1] < 0.6
    for call in calls:
        if call is not gone:
            assert_solo(plain, call)
    sizes = coalescer.batch_sizes()
    assert sizes.get(3) and sizes.get(2)  # all three at first, then the two left


def test_a_decode_stops_when_every_call_in_it_cancelled(plain: LoadedMusicGen,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from models.musicgen.fast_decode import FastMusicGenDecoder

    steps = [0]
    original = FastMusicGenDecoder._forward_step

    def counted(self: Any, codes: Any, pos: Any) -> Any:
        steps[0] += 1
        return original(self, codes, pos)

    monkeypatch.setattr(FastMusicGenDecoder, "_forward_step", counted)
    calls = [Call(f"groove {i}", seed=i, duration_s=4.0, cancel_at=0.05) for i in range(2)]
    coalescer = WindowCoalescer(plain, wait_s=PATIENT_S)
    run_together(plain, calls, coalescer)
    for call in calls:
        assert isinstance(call.error, GenerationCancelled)
    assert coalescer.batch_sizes() == {2: 1}
    assert steps[0] < 30  # the first window has 53 steps; it stopped soon after both cancelled


def test_a_failing_progress_callback_fails_only_its_call(plain: LoadedMusicGen) -> None:
    calls = [Call(f"groove {i}", seed=i, prompt=noise(plain, 30, 50 + i)) for i in range(2)]

    def broken(fraction: float, message: str) -> None:
        if fraction > 0.2:
            raise OSError("progress pipe closed")

    calls[0].progress = broken  # type: ignore[method-assign]
    coalescer = WindowCoalescer(plain, wait_s=PATIENT_S)
    run_together(plain, calls, coalescer)
    assert isinstance(calls[0].error, OSError)
    assert_solo(plain, calls[1])


def test_merge_key_and_bad_options(plain: LoadedMusicGen) -> None:
    prompt = noise(plain, 20, 0)
    a = window_key(plain, "funk", 30, prompt, None, OPTIONS)
    assert a == window_key(plain, "a much longer text prompt", 30, noise(plain, 20, 1), None, OPTIONS)
    assert a != window_key(plain, "funk", 31, prompt, None, OPTIONS)
    assert a != window_key(plain, "funk", 30, noise(plain, 21, 0), None, OPTIONS)
    assert a != window_key(plain, "funk", 30, prompt, None, SamplingOptions(window_s=1.0, context_s=0.4, top_k=50))
    assert window_key(plain, "funk", 2, None, None, OPTIONS).stock
    with pytest.raises(ValueError, match="batch_wait_s=-1"):
        WindowCoalescer(plain, wait_s=-1)
    with pytest.raises(ValueError, match="max_batch=0"):
        WindowCoalescer(plain, max_batch=0)
    with pytest.raises(RuntimeError, match="inside session"):
        WindowCoalescer(plain).window("funk", 10, prompt=None, chroma=None, options=OPTIONS,
                                      generator=torch.Generator(), cancel=CancelToken(), on_step=lambda n: None)


def test_max_batch_splits_a_crowd(plain: LoadedMusicGen) -> None:
    calls = [Call(f"groove {i}", seed=i, duration_s=1.0) for i in range(3)]
    coalescer = WindowCoalescer(plain, wait_s=PATIENT_S, max_batch=2)
    run_together(plain, calls, coalescer)
    for call in calls:
        assert_solo(plain, call)
    assert coalescer.batch_sizes() == {2: 1, 1: 1}


def make_cond(text: str) -> Any:
    from conditioning.timeline import Section, TempoMap
    from conditioning.types import SectionConditioning

    tm = TempoMap.constant(120)
    return SectionConditioning(section=Section.from_bars("Verse", 1, 2, tm), tempo_map=tm, sample_rate=48000,
                               prompt=text, stems=("bass", "keys"))


def test_generator_options_are_checked_before_loading() -> None:
    from models.registry import build_generator

    with pytest.raises(ValueError, match="batch_wait_s=-0.5"):
        build_generator("musicgen-debug", batch_wait_s=-0.5)
    with pytest.raises(ValueError, match="max_batch=0"):
        build_generator("musicgen-debug", max_batch=0)


@pytest.mark.slow  # Demucs splits every take
def test_generator_calls_in_threads_share_windows_and_keep_their_takes() -> None:
    pytest.importorskip("demucs")
    from conditioning.types import Audio
    from models.registry import build_generator

    gen: Any = build_generator("musicgen-debug", window_s=1.0, context_s=0.3, batch_wait_s=1.0)
    alone: Any = build_generator("musicgen-debug", coalesce=False)
    assert gen.coalescer is not None and alone.coalescer is None
    rng = np.random.default_rng(0)
    jobs = [(make_cond("funk, 120 bpm"), 3, Audio((0.1 * rng.standard_normal((2, 48000))).astype(np.float32), 48000)),
            (make_cond("slow ambient pads, 120 bpm"), 9,
             Audio((0.1 * rng.standard_normal((2, 48000))).astype(np.float32), 48000))]
    takes: dict[int, Any] = {}

    def work(i: int) -> None:
        cond, seed, prev = jobs[i]
        takes[i] = gen.generate(cond, seed=seed, previous_audio=prev)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    shared = gen.coalescer
    assert shared is not None and 2 in shared.batch_sizes()  # the calls overlap for all 4 windows of each
    gen.coalescer = None  # the path without coalescing: torch's global generator, one call at a time
    for i, (cond, seed, prev) in enumerate(jobs):
        single = gen.generate(cond, seed=seed, previous_audio=prev)
        for stem in ("bass", "keys"):
            np.testing.assert_array_equal(takes[i].stems[stem].samples, single.stems[stem].samples)
        assert takes[i].info == single.info
