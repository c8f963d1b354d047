"""One factory for every named embedder, local or remote."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ai_assets.core.embedding.base import Embedder, embedder_spec
from ai_assets.core.embedding.local import SentenceTransformerEmbedder
from ai_assets.core.embedding.precision import LocalPrecision
from ai_assets.core.embedding.tokenizer import minilm_model_path

if TYPE_CHECKING:

    from ai_assets.core.embedding.openai_embedder import OpenAISettings


def create_embedder(
    name: str,
    batch_size: int = 64,
    precision: LocalPrecision = "auto",
    openai: OpenAISettings | None = None,
    openai_dimensions: int | None = None,
) -> Embedder:
    spec = embedder_spec(name, openai_dimensions)
    if spec.provider == "openai":
        from ai_assets.core.embedding.openai_embedder import OpenAIEmbedder, OpenAISettings

        return OpenAIEmbedder(spec, openai or OpenAISettings())
    return SentenceTransformerEmbedder(spec, minilm_model_path(), batch_size=batch_size, precision=precision)


def local_backend_line(enabled: list[str], precision: LocalPrecision) -> str | None:
    """What runs the enabled local model and why, for a build's first lines; measures ``auto``'s
    choice here on a machine's first build, before any step waits on it. None without a local model."""
    local = [name for name in enabled if embedder_spec(name).provider == "sentence-transformers"]
    if not local:
        return None
    embedder = create_embedder(local[0], precision=precision)
    return f"local model: {embedder.precision} ({embedder.precision_reason})"
