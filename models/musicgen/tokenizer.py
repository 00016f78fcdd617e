"""A tiny byte-level tokenizer built in memory, for the debug models (no download).

Every UTF-8 byte of the prompt is one token (ids 3-258) and ``</s>`` ends the sequence, as T5
does; so two different prompts always give different token ids.
"""

from __future__ import annotations

from typing import Any

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")
VOCAB_SIZE = len(SPECIAL_TOKENS) + 256


def build_debug_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` over UTF-8 bytes with T5's special-token ids (pad 0, eos 1, unk 2)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in sorted(alphabet):
        vocab[ch] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
