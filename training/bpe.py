# CLIP-style byte-level BPE: a small trainer plus a reference encoder, so our fixtures and the default
# model ship a tokenizer in the exact vocab.json/merges.txt format the engine's CLIP tokenizer reads.
"""CLIP-style byte-level BPE trainer and reference encoder (our own code).

Conventions follow OpenAI CLIP's ``simple_tokenizer.py`` and Hugging Face's ``CLIPTokenizer``
(read for reference, not copied):

* text cleaning: collapse runs of whitespace to one space, strip, lowercase;
* pre-tokenisation with CLIP's pattern
  ``<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+``;
* each pre-token's UTF-8 bytes are mapped to printable characters with GPT-2's ``bytes_to_unicode``
  table and the last symbol of a word carries the ``</w>`` end-of-word marker;
* vocabulary order: the 256 byte characters, the same 256 with ``</w>``, merged tokens in merge order,
  then ``<|startoftext|>`` and ``<|endoftext|>``;
* encoding merges the lowest-ranked adjacent pair repeatedly (all its occurrences, left to right).

Python's ``re`` has no ``\\p{..}`` classes, so the pattern is rewritten with equivalents:

* ``[\\p{L}]+``            -> ``[^\\W\\d_]+``   word characters that are neither digits nor underscore;
* ``[\\p{N}]``             -> ``\\d``           one decimal digit;
* ``[^\\s\\p{L}\\p{N}]+``    -> ``(?:[^\\s\\w]|_)+`` anything that is not space, letter or digit (``_`` is
  punctuation for CLIP but a word character for Python, hence the explicit alternative).

They agree on all of ASCII and on letters/decimal digits of every script. They differ only on the rare
non-decimal numerals (Unicode categories Nl/No such as ``²`` or ``½``), which Python's ``\\w`` treats as
letters while CLIP treats them as numbers; our corpora never contain them.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Dict, Iterable, List, Optional, Tuple

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"

PRETOKENIZE_PATTERN = re.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+",
    re.IGNORECASE,
)
_WHITESPACE = re.compile(r"\s+")


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible byte -> printable character table (openai/gpt-2 encoder.py, also in CLIP).

    Printable Latin-1 bytes map to themselves; the remaining 68 bytes map to chr(256 + n) in byte order.
    The dict's insertion order (printable bytes first) is the order CLIP uses for its base vocabulary.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table: Dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


_BYTE_ENCODER = bytes_to_unicode()


def clean_text(text: str) -> str:
    """CLIP's whitespace_clean + lower-casing (ftfy/html unescaping is left out)."""
    return _WHITESPACE.sub(" ", text).strip().lower()


def pretokenize(text: str) -> List[str]:
    """Cleaned text -> CLIP pre-tokens (special tokens stay whole)."""
    return PRETOKENIZE_PATTERN.findall(clean_text(text))


def _word_symbols(token: str) -> Tuple[str, ...]:
    chars = "".join(_BYTE_ENCODER[b] for b in token.encode("utf-8"))
    return tuple(chars[:-1]) + (chars[-1] + END_OF_WORD,)


def base_vocab() -> List[str]:
    chars = list(_BYTE_ENCODER.values())
    return chars + [c + END_OF_WORD for c in chars]


def _merge_word(word: Tuple[str, ...], pair: Tuple[str, str]) -> Tuple[str, ...]:
    first, second = pair
    out: List[str] = []
    i = 0
    while i < len(word):
        if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
            out.append(first + second)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tuple[Dict[str, int], List[Tuple[str, str]]]:
    """Learn CLIP-style merges until the vocabulary has ``vocab_size`` entries (or no pair is left).

    Each step merges the most frequent adjacent pair over all words (weighted by word count); ties go to
    the lexicographically smallest pair, so the result is deterministic.
    """
    n_base = 512 + 2  # byte chars, byte chars + </w>, two special tokens
    if vocab_size < n_base:
        raise ValueError(f"vocab_size must be at least {n_base}")
    word_counts: Counter = Counter()
    for text in texts:
        for token in pretokenize(text):
            if token in (BOS_TOKEN, EOS_TOKEN):
                continue
            word_counts[_word_symbols(token)] += 1

    words: Dict[Tuple[str, ...], int] = dict(word_counts)
    merges: List[Tuple[str, str]] = []
    vocab_list = base_vocab()
    known = set(vocab_list)
    while len(vocab_list) + 2 < vocab_size:
        pair_counts: Counter = Counter()
        for word, count in words.items():
            for a, b in zip(word, word[1:]):
                pair_counts[(a, b)] += count
        if not pair_counts:
            break
        best_count = max(pair_counts.values())
        best = min(p for p, c in pair_counts.items() if c == best_count)
        merges.append(best)
        merged = best[0] + best[1]
        if merged not in known:
            known.add(merged)
            vocab_list.append(merged)
        new_words: Dict[Tuple[str, ...], int] = {}
        for word, count in words.items():
            w = _merge_word(word, best) if best[0] in word else word
            new_words[w] = new_words.get(w, 0) + count
        words = new_words
    vocab_list += [BOS_TOKEN, EOS_TOKEN]
    vocab = {token: i for i, token in enumerate(vocab_list)}
    return vocab, merges


def bpe_word(token: str, ranks: Dict[Tuple[str, str], int]) -> List[str]:
    """CLIP's bpe(): merge the lowest-ranked adjacent pair until none of the pairs is a known merge."""
    word = _word_symbols(token)
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        word = _merge_word(word, best)
    return list(word)


def encode(
    text: str,
    vocab: Dict[str, int],
    merges: List[Tuple[str, str]],
    max_length: int = 77,
    pad_id: Optional[int] = None,
) -> List[int]:
    """BOS + BPE ids + EOS, truncated to ``max_length`` (EOS kept last), padded with ``pad_id`` (EOS)."""
    ranks = {tuple(m): i for i, m in enumerate(merges)}
    bos, eos = vocab[BOS_TOKEN], vocab[EOS_TOKEN]
    ids: List[int] = []
    for token in pretokenize(text):
        if token in (BOS_TOKEN, EOS_TOKEN):
            ids.append(vocab[token])
            continue
        ids.extend(vocab[piece] for piece in bpe_word(token, ranks))
    ids = [bos] + ids[: max_length - 2] + [eos]
    fill = eos if pad_id is None else pad_id
    return ids + [fill] * (max_length - len(ids))


def write_tokenizer_folder(
    path: str,
    vocab: Dict[str, int],
    merges: List[Tuple[str, str]],
    max_length: int = 77,
    pad_token: str = EOS_TOKEN,
) -> None:
    """Write vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json (CLIPTokenizer)."""
    os.makedirs(path, exist_ok=True)

    def dump(name: str, obj) -> None:
        with open(os.path.join(path, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=2)
            f.write("\n")

    with open(os.path.join(path, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(path, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    dump(
        "tokenizer_config.json",
        {
            "add_prefix_space": False,
            "bos_token": BOS_TOKEN,
            "clean_up_tokenization_spaces": True,
            "do_lower_case": True,
            "eos_token": EOS_TOKEN,
            "errors": "replace",
            "model_max_length": max_length,
            "pad_token": pad_token,
            "tokenizer_class": "CLIPTokenizer",
            "unk_token": EOS_TOKEN,
        },
    )
    dump(
        "special_tokens_map.json",
        {"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "pad_token": pad_token, "unk_token": EOS_TOKEN},
    )


def load_tokenizer_folder(path: str) -> Tuple[Dict[str, int], List[Tuple[str, str]]]:
    """Read vocab.json + merges.txt back (skipping the #version line)."""
    with open(os.path.join(path, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    merges: List[Tuple[str, str]] = []
    with open(os.path.join(path, "merges.txt"), encoding="utf-8") as f:
        for line in f.read().split("\n"):
            if not line or line.startswith("#version"):
                continue
            a, b = line.split(" ")
            merges.append((a, b))
    return vocab, merges


if __name__ == "__main__":
    demo = ["a red circle on a blue square", "two green triangles", "a red square"] * 3
    v, m = train_bpe(demo, 530)
    print(len(v), m[:5])
    print(encode("A red  circle!", v, m, max_length=12))
