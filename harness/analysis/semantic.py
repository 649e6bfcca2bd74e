"""The offline semantic-similarity backend: WordLlama embeddings, loaded only when asked for.

`wordllama <https://github.com/dleemiller/WordLlama>`_ (MIT licence; its token embeddings are
derived from Llama 2's, so their use also falls under the Llama 2 Community Licence) ships its
256-dimension weights and its tokenizer inside the wheel. ``WordLlama.load()`` with its defaults
looks for the tokenizer under ``tokenizer/`` next to the package (the wheel has ``tokenizers/``)
and then downloads it from Hugging Face; pointing ``cache_dir`` at the package's own directory
finds both files there, and ``disable_download`` turns any miss into an error instead of a
network call. So semantic similarity never touches the network.

It is an optional extra (``pip install 'shadow-harness[semantic]'``): when the package is
missing, :func:`load_embedder` says why and the analysis keeps the lexical (word) similarity.
Importing it costs ~0.3 s and loading ~0.2 s, paid only by runs whose scenario asks for it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.analysis.similarity import Embedder

__all__ = ["INSTALL_HINT", "SemanticUnavailable", "load_embedder"]

INSTALL_HINT = "pip install 'shadow-harness[semantic]' (the wordllama package)"


class SemanticUnavailable(Exception):
    """The semantic backend cannot be loaded; the message says why."""


@functools.cache
def load_embedder() -> Embedder:
    """The WordLlama embedder, loaded once per process from the wheel's own files (offline).

    Raises :class:`SemanticUnavailable` when the package or its bundled files are missing.
    """
    try:
        import wordllama
    except ImportError:
        raise SemanticUnavailable(
            f"the wordllama package is not installed ({INSTALL_HINT})"
        ) from None
    package_dir = Path(wordllama.__file__).resolve().parent
    try:
        model = wordllama.WordLlama.load(cache_dir=package_dir, disable_download=True)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise SemanticUnavailable(
            f"wordllama could not load its bundled weights from {package_dir} ({exc})"
        ) from exc

    def embed(texts: Sequence[str]) -> npt.NDArray[np.floating[Any]]:
        return np.asarray(model.embed(list(texts), norm=False), dtype=np.float64)

    return embed
