"""MusicGen architectures as transformers configs: the official sizes and tiny debug ones.

The official hyperparameters (decoder width/depth/heads, T5-base text encoder, 32 kHz EnCodec
with 4 codebooks of 2048 entries at 50 Hz) are written out here so the architectures can be
built with random weights without any download (for benchmarks). The ``debug`` sizes are tiny
versions for CPU tests. transformers is imported inside the functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DecoderSize:
    """Width and depth of a MusicGen decoder.

    Attributes:
        hidden_size: model width.
        num_layers: transformer layers.
        num_heads: attention heads.
        ffn_dim: feed-forward width.
    """

    hidden_size: int
    num_layers: int
    num_heads: int
    ffn_dim: int


#: Official decoder sizes (facebook/musicgen-*); melody uses the medium decoder.
OFFICIAL_SIZES: dict[str, DecoderSize] = {
    "small": DecoderSize(1024, 24, 16, 4096),
    "medium": DecoderSize(1536, 48, 24, 6144),
    "large": DecoderSize(2048, 48, 32, 8192),
    "melody": DecoderSize(1536, 48, 24, 6144),
}
DEBUG_SIZE = DecoderSize(32, 2, 2, 64)

#: Chroma hop of MusicGen-melody's feature extractor, in samples at the codec rate.
CHROMA_HOP = 4096


def _t5_config(debug: bool, vocab_size: int) -> Any:
    from transformers import T5Config

    if debug:
        return T5Config(
            vocab_size=vocab_size, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
            relative_attention_num_buckets=8, relative_attention_max_distance=32,
            pad_token_id=0, eos_token_id=1,
        )
    return T5Config(  # t5-base
        vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12,
        relative_attention_num_buckets=32, feed_forward_proj="relu",
        pad_token_id=0, eos_token_id=1,
    )


def _encodec_config(debug: bool) -> Any:
    from transformers import EncodecConfig

    common: dict[str, Any] = {
        "sampling_rate": 32000, "audio_channels": 1, "upsampling_ratios": [8, 5, 4, 4],
        "normalize": False, "use_causal_conv": False, "use_conv_shortcut": False,
        "chunk_length_s": None, "overlap": None, "num_lstm_layers": 2, "pad_mode": "reflect",
    }
    if debug:
        # 1024 entries = 10 bits; 2.0 kbps at 50 Hz -> 4 codebooks
        return EncodecConfig(
            **common, hidden_size=16, num_filters=4, codebook_size=1024, codebook_dim=16,
            target_bandwidths=[2.0], num_residual_layers=1,
        )
    # 2048 entries = 11 bits; 2.2 kbps at 50 Hz -> 4 codebooks
    return EncodecConfig(
        **common, hidden_size=128, num_filters=64, codebook_size=2048, codebook_dim=128,
        target_bandwidths=[2.2], num_residual_layers=1,
    )


def build_config(size: str, *, melody: bool = False, text_vocab_size: int = 300) -> Any:
    """A full MusicGen (or MusicGen-melody) config.

    Args:
        size: "debug" or one of :data:`OFFICIAL_SIZES`.
        melody: build a MusicgenMelodyConfig (text + chroma conditioning).
        text_vocab_size: vocabulary of the debug text encoder (ignored for official sizes).

    Returns:
        A ``MusicgenConfig`` or ``MusicgenMelodyConfig``.

    Raises:
        ValueError: unknown size.
    """
    debug = size == "debug"
    if not debug and size not in OFFICIAL_SIZES:
        raise ValueError(f"unknown MusicGen size {size!r}; choose debug, {', '.join(OFFICIAL_SIZES)}")
    dec = DEBUG_SIZE if debug else OFFICIAL_SIZES[size]
    codebook = 1024 if debug else 2048
    dec_kwargs: dict[str, Any] = {
        "vocab_size": codebook, "max_position_embeddings": 2048, "num_hidden_layers": dec.num_layers,
        "ffn_dim": dec.ffn_dim, "num_attention_heads": dec.num_heads, "hidden_size": dec.hidden_size,
        "num_codebooks": 4, "audio_channels": 1, "pad_token_id": codebook, "bos_token_id": codebook,
        "dropout": 0.1, "activation_function": "gelu",
        # the debug model gets a wider init so its (random) samples visibly follow the conditioning
        "initializer_factor": 0.5 if debug else 0.02,
    }
    init = 0.5 if debug else 0.02
    text = _t5_config(debug, text_vocab_size)
    codec = _encodec_config(debug)
    if melody:
        from transformers import MusicgenMelodyConfig, MusicgenMelodyDecoderConfig

        return MusicgenMelodyConfig(
            text_encoder=text, audio_encoder=codec, decoder=MusicgenMelodyDecoderConfig(**dec_kwargs),
            num_chroma=12, chroma_length=235, initializer_factor=init,
        )
    from transformers import MusicgenConfig, MusicgenDecoderConfig

    return MusicgenConfig(
        text_encoder=text, audio_encoder=codec, decoder=MusicgenDecoderConfig(**dec_kwargs),
        initializer_factor=init,
    )


def generation_config(model: Any, *, guidance_scale: float = 3.0, top_k: int = 250) -> Any:
    """The official sampling settings (top-k 250, classifier-free guidance 3) for ``model``."""
    from transformers import GenerationConfig

    dec = model.config.decoder
    return GenerationConfig(
        do_sample=True, top_k=top_k, guidance_scale=guidance_scale, max_length=1500,
        pad_token_id=dec.pad_token_id, bos_token_id=dec.bos_token_id,
        decoder_start_token_id=dec.bos_token_id,
    )


def build_random_model(size: str, *, melody: bool = False, text_vocab_size: int = 300) -> Any:
    """Construct a model with random weights from :func:`build_config` (no download)."""
    from transformers import (
        MusicgenForConditionalGeneration,
        MusicgenMelodyForConditionalGeneration,
    )

    config = build_config(size, melody=melody, text_vocab_size=text_vocab_size)
    cls = MusicgenMelodyForConditionalGeneration if melody else MusicgenForConditionalGeneration
    model = cls(config)
    _init_codebooks(model)
    model.generation_config = generation_config(model)
    return model.eval()


def _init_codebooks(model: Any) -> None:
    """Give EnCodec's codebooks random entries (they start as zeros, so every code would decode
    to the same sound and the random model's output would not depend on what it sampled)."""
    import torch

    with torch.no_grad():
        for module in model.audio_encoder.modules():
            embed = getattr(module, "embed", None)
            if isinstance(embed, torch.Tensor) and embed.dim() == 2 and hasattr(module, "embed_avg"):
                embed.normal_()
                module.embed_avg.copy_(embed)
