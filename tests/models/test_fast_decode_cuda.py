"""The fast decoder's CUDA-only paths: CUDA-graph replay and torch.compile's reduce-overhead mode.

These need a CUDA device, so they are skipped on the CPU machines CI runs on; run them where a
GPU is (``bash benchmarks/gpu_check.sh`` runs them first, then the GPU benchmarks). The CPU tests
(``test_musicgen_fast.py``, ``test_cocomulla_fast.py``) already prove the capturable "static"
step gives stock's codes; here the graph replaying that step must give exactly the "static"
step's codes on the same GPU (same kernels, so no rounding excuse), the per-item random
generators must advance through replays, and progress/cancel must still work while steps are
queued ahead of the device.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from models.cocomulla.adapter import ConditionStates, condition_states  # noqa: E402
from models.cocomulla.fast import CocoMullaFastDecoder  # noqa: E402
from models.cocomulla.generator import debug_adapter  # noqa: E402
from models.musicgen.fast_decode import FastMusicGenDecoder  # noqa: E402
from models.musicgen.loading import LoadedMusicGen, load_debug  # noqa: E402
from models.musicgen.token_picking import PickOptions  # noqa: E402

pytestmark = [
    pytest.mark.neural,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run benchmarks/gpu_check.sh on one)"),
]

STEPS = 120


@pytest.fixture(scope="module", autouse=True)
def exact_float32() -> Any:
    """fp32 matmuls without TF32, so "exact" means exact."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.fixture(scope="module")
def plain() -> LoadedMusicGen:
    return load_debug(melody=False, device="cuda")


@pytest.fixture(scope="module")
def melody() -> LoadedMusicGen:
    return load_debug(melody=True, device="cuda")


def texts(lm: LoadedMusicGen, prompts: list[str]) -> dict[str, Any]:
    return {k: v.to("cuda") for k, v in lm.tokenizer(prompts, return_tensors="pt", padding=True).items()}


def decode(dec: FastMusicGenDecoder, inputs: dict[str, Any], options: PickOptions, seed: int = 3,
           **kwargs: Any) -> Any:
    torch.manual_seed(seed)
    codes = dec.generate_codes(inputs["input_ids"], inputs["attention_mask"], max_new_tokens=STEPS,
                               options=options, **kwargs)
    torch.cuda.synchronize()
    return codes


def test_graph_replay_samples_the_static_step_codes(plain: LoadedMusicGen, melody: LoadedMusicGen) -> None:
    for lm in (plain, melody):
        inputs = texts(lm, ["house beat"])
        graph = FastMusicGenDecoder(lm.model)
        assert graph.mode == "graph"  # the default on CUDA
        static = FastMusicGenDecoder(lm.model, mode="static")
        for options in (PickOptions(guidance_scale=3.0, top_k=250), PickOptions(greedy=True)):
            assert torch.equal(decode(graph, inputs, options), decode(static, inputs, options))


def test_graph_replays_advance_each_items_generator(plain: LoadedMusicGen) -> None:
    """A batch of two variations with their own generators: the registered generator states
    advance on every replay, so the graph's takes are the static step's takes."""
    inputs = texts(plain, ["funk", "funk"])

    def generators() -> list[Any]:
        return [torch.Generator(device="cuda").manual_seed(s) for s in (11, 12)]

    graph = decode(FastMusicGenDecoder(plain.model), inputs, PickOptions(), generators=generators())
    static = decode(FastMusicGenDecoder(plain.model, mode="static"), inputs, PickOptions(), generators=generators())
    assert torch.equal(graph, static)
    assert not torch.equal(graph[0], graph[1])  # two seeds, two takes


def test_graph_mode_reports_every_step_and_cancels(plain: LoadedMusicGen) -> None:
    inputs = texts(plain, ["house beat"])
    dec = FastMusicGenDecoder(plain.model)
    seen: list[int] = []
    decode(dec, inputs, PickOptions(), on_step=seen.append)
    assert seen == list(range(1, STEPS + 1))

    class Stop(Exception):
        pass

    def stop_at_40(step: int) -> None:
        if step == 40:
            raise Stop

    with pytest.raises(Stop):
        decode(dec, inputs, PickOptions(), on_step=stop_at_40)
    again = decode(dec, inputs, PickOptions(greedy=True))  # the decoder is usable after a cancel
    assert torch.equal(again, decode(FastMusicGenDecoder(plain.model, mode="static"), inputs, PickOptions(greedy=True)))


def test_compiled_reduce_overhead_gives_the_static_greedy_codes(plain: LoadedMusicGen) -> None:
    inputs = texts(plain, ["house beat"])
    compiled = FastMusicGenDecoder(plain.model, mode="compiled")
    static = decode(FastMusicGenDecoder(plain.model, mode="static"), inputs, PickOptions(greedy=True))
    for _ in range(2):  # the second call reuses the compiled step (and its CUDA graphs)
        assert torch.equal(decode(compiled, inputs, PickOptions(greedy=True)), static)


def cocomulla_states(lm: LoadedMusicGen, frames: int) -> ConditionStates:
    decoder = lm.model.decoder
    adapter = debug_adapter(decoder, seed=0, gate=0.5).to("cuda").eval()
    g = torch.Generator().manual_seed(0)
    t = frames + 1
    with torch.inference_mode():
        return condition_states(
            decoder, adapter, chords=torch.rand(1, t, 37, generator=g).round().cuda(),
            piano_roll=torch.rand(1, t, 128, generator=g).round().cuda(),
            drum_codes=torch.randint(0, int(decoder.config.vocab_size), (1, 4, t), generator=g).cuda(),
            cond_mask=torch.ones(1, 2, t, device="cuda"), query_frames=frames,
        )


def test_cocomulla_graph_replay_samples_the_static_step_codes(plain: LoadedMusicGen) -> None:
    inputs = texts(plain, ["lo-fi funk"])
    states = cocomulla_states(plain, STEPS - 3)
    graph = CocoMullaFastDecoder(plain.model, states)
    assert graph.mode == "graph"
    static = CocoMullaFastDecoder(plain.model, states, mode="static")
    assert torch.equal(decode(graph, inputs, PickOptions()), decode(static, inputs, PickOptions()))
