"""The words easel-shapes' captions are made of, for the server's "ignored words" warning.

Samples captions from the caption grammar in ``scenes.py`` with no distractor words, so every word that can
carry meaning (colour, shape, size, count, place, background, joining words) appears, and writes the sorted
list to ``easel.json`` as ``prompt_vocabulary``. Words outside it are ones the model was trained to ignore.

    python3 training/vocabulary.py models/easel-shapes/easel.json
"""
import json
import random
import re
import sys

import scenes


def grammar_words(samples: int = 40000, seed: int = 0) -> list:
    rng = random.Random(seed)
    words = set()
    for _ in range(samples):
        text, _spec = scenes.sample(rng, distractors=0.0)
        words.update(re.findall(r"[a-z0-9]+", text.lower()))
    return sorted(words)


def main(path: str) -> None:
    with open(path) as f:
        extras = json.load(f)
    extras["prompt_vocabulary"] = grammar_words()
    with open(path, "w") as f:
        json.dump(extras, f, indent=2)
        f.write("\n")
    print(f"{path}: {len(extras['prompt_vocabulary'])} words")


if __name__ == "__main__":
    main(sys.argv[1])
