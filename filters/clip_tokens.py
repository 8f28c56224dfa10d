"""clip's tokenizer, faster and with the same output (`clip.tokenize(..., truncate=True)`).

clip's `encode` spends most of its time in `ftfy.fix_text` and a double `html.unescape`. For
a caption of printable ASCII (plus tab and newline) with no "&", both are the identity: ftfy
only changes non-ASCII text, control characters, terminal escapes and HTML entities, and
unescaping needs an "&". Such captions (nearly all after prepare's cleaning) skip straight
to clip's own whitespace cleaning, regex split and BPE; the ids of each word are cached.
Any other caption goes through clip's own `encode`. The unit tests compare with
`clip.tokenize` on many captions, edge cases included.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch

_PLAIN = re.compile(r"[\t\n\x20-\x25\x27-\x7e]*")  # printable ASCII, tab and newline; no "&"
_WORD_CACHE_LIMIT = 1 << 20


class FastTokenizer:
    def __init__(self):
        from clip.simple_tokenizer import whitespace_clean
        from clip.clip import _tokenizer

        self._tok = _tokenizer
        self._clean = whitespace_clean
        self.sot = _tokenizer.encoder["<|startoftext|>"]
        self.eot = _tokenizer.encoder["<|endoftext|>"]
        self._words: dict[str, list[int]] = {}

    def _word_ids(self, word: str) -> list[int]:
        ids = self._words.get(word)
        if ids is None:
            tok = self._tok
            unicode_word = "".join(tok.byte_encoder[b] for b in word.encode("utf-8"))
            ids = [tok.encoder[piece] for piece in tok.bpe(unicode_word).split(" ")]
            if len(self._words) < _WORD_CACHE_LIMIT:
                self._words[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        if not _PLAIN.fullmatch(text):
            return self._tok.encode(text)  # clip's own path: ftfy, html unescape
        ids: list[int] = []
        for word in self._tok.pat.findall(self._clean(text).lower()):
            ids.extend(self._word_ids(word))
        return ids

    def __call__(self, texts: Sequence[str], context_length: int) -> torch.Tensor:
        out = np.zeros((len(texts), context_length), dtype=np.int64)
        for i, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot]
            if len(ids) > context_length:  # clip's truncate=True
                ids = ids[:context_length]
                ids[-1] = self.eot
            out[i, : len(ids)] = ids
        return torch.from_numpy(out)


_instance: FastTokenizer | None = None


def tokenize(texts: Sequence[str], context_length: int = 77) -> torch.Tensor:
    """Same tensor as `clip.tokenize(texts, context_length, truncate=True)`."""
    global _instance
    if _instance is None:
        _instance = FastTokenizer()
    return _instance(list(texts), context_length)
