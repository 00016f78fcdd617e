"""Where Coco-Mulla's two weight sets are, without importing torch or touching the network.

``cocomulla`` needs the base MusicGen-large (HuggingFace cache or ``--model-path``) and the
authors' adapter checkpoint (``--adapter FILE``, the server config's ``adapter`` option, or the
``STEMBRIDGE_COCOMULLA_ADAPTER`` environment variable).
"""

from __future__ import annotations

import os
from pathlib import Path

from models.musicgen.loading import weights_present
from models.separation.demucs import htdemucs_weights

#: Hub id of the base model the released adapter was trained on.
BASE_MODEL = "facebook/musicgen-large"
#: Environment variable naming the adapter checkpoint when no option gives it.
ADAPTER_ENV = "STEMBRIDGE_COCOMULLA_ADAPTER"

ADAPTER_HINT = (
    "get the authors' adapter (e.g. diff_9_end.pth, linked from the Kikyo-16/coco-mulla-repo README; "
    "research use only, no licence) or train your own with `stembridge cocomulla train --data DIR "
    f"--out FILE`, then pass --adapter FILE or set {ADAPTER_ENV}"
)


def adapter_path(adapter: str | None = None) -> Path | None:
    """The adapter checkpoint named by ``adapter`` or the environment (None when neither is set)."""
    chosen = adapter or os.environ.get(ADAPTER_ENV)
    return Path(chosen).expanduser() if chosen else None


def adapter_status(adapter: str | None = None) -> tuple[bool, str]:
    """(present, detail) for the adapter checkpoint."""
    path = adapter_path(adapter)
    if path is None:
        return False, f"adapter: none given; {ADAPTER_HINT}"
    if not path.is_file():
        return False, f"adapter: {path} does not exist; {ADAPTER_HINT}"
    return True, f"adapter: {path}"


def cocomulla_weights(model_path: str | None = None, adapter: str | None = None) -> tuple[bool, str]:
    """Weights check for ``cocomulla``: base model, adapter and the htdemucs separator, each named."""
    base = weights_present(model_path or BASE_MODEL)
    adapt = adapter_status(adapter)
    sep = htdemucs_weights()
    present = base[0] and adapt[0] and sep[0]
    return present, f"base: {base[1]}; {adapt[1]}; {sep[1]}"


def debug_weights() -> tuple[bool, str]:
    """``cocomulla-debug`` builds its tiny model and adapter in memory: always present."""
    return True, "tiny random model and adapter built in memory"
