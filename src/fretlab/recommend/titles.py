"""Playlist titles as hashed tokens: normalized words and, for the subword encoder, character 3-5-grams."""

from __future__ import annotations

import re
import unicodedata
import zlib

NGRAMS = (3, 4, 5)
_WORD = re.compile(r"[^\W_]+|[^\w\s]", re.UNICODE)  # runs of letters/digits, or one symbol (an emoji)
_VARIATION = re.compile("[\ufe0f\u200d]")  # emoji variation selectors and joiners carry no meaning


def words(title: str) -> list[str]:
    """Lower-cased, accent-folded words and single symbols (emoji) of a title."""
    text = unicodedata.normalize("NFKC", _VARIATION.sub("", title)).lower()
    return _WORD.findall(text)


def tokens(title: str, encoder: str) -> list[str]:
    """``words``: the words; ``hashing``: the words plus the character n-grams of each ``<word>``
    (marked ``#``, so the n-gram ``gym`` of ``<gym>`` is not the word ``gym``)."""
    out = words(title)
    if encoder == "hashing":
        for w in list(out):
            padded = f"<{w}>"
            out += ["#" + padded[i:i + n] for n in NGRAMS for i in range(len(padded) - n + 1) if len(padded) > n]
    return out


def hash_tokens(title: str, encoder: str, buckets: int) -> list[int]:
    """Token ids in ``1..buckets-1`` (0 is padding), stable across processes (crc32, not Python's hash)."""
    return [1 + zlib.crc32(t.encode("utf-8")) % (buckets - 1) for t in tokens(title, encoder)]
