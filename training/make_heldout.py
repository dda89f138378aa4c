# Writes training/heldout.json: 100 seeded held-out prompts with the scene each must produce, including
# colour-shape pairs, shape pairs and placements that the training sampler never generates.
"""Usage: python3 training/make_heldout.py [--seed 5] [--out training/heldout.json]
(deterministic; the defaults rewrite training/heldout.json, the set the samplers and guidance were tuned on.
``--seed 6 --out training/heldout-check.json`` writes the second set, drawn by the same rules from another seed
(never used for tuning the sampler or guidance, but used with the first to choose the current export).
``--seed 9 10 --out training/heldout-confirm.json`` writes the 200-prompt confirmation set, used only to confirm
an export chosen on the other sets: it gives the unbiased score.)

Each prompt's ``expect`` uses the spec format documented at the top of ``scenes.py``:
background {kind: solid|gradient|transparent, color | from+to}, objects [{color, shape, size, position}]
with position null meaning anywhere. ``category`` says what the prompt tests; ``unseen`` lists what in
it never appeared in training.
"""
import argparse
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes  # noqa: E402
from scenes import COLORS, HELDOUT_COOCCUR, HELDOUT_PAIRS, HELDOUT_PLACEMENT, POSITIONS, SHAPES  # noqa: E402


def bg_for(rng, avoid):
    u = rng.random()
    if u < 0.5:
        return {"kind": "solid", "color": rng.choice([c for c in COLORS if c not in avoid])}
    if u < 0.75:
        a, b = rng.sample([c for c in COLORS if c not in avoid], 2)
        return {"kind": "gradient", "from": a, "to": b}
    return {"kind": "transparent"}


def obj(color, shape, size=None, position=None, rng=None):
    return {"color": color, "shape": shape, "size": size or rng.choices(["small", "medium", "large"], [1, 2, 1])[0],
            "position": position}


def seen_pair(rng):
    while True:
        c, s = rng.choice(COLORS), rng.choice(SHAPES)
        if (c, s) not in HELDOUT_PAIRS:
            return c, s


def unseen_of(spec):
    out = []
    shapes = {o["shape"] for o in spec["objects"]}
    for o in spec["objects"]:
        if (o["color"], o["shape"]) in HELDOUT_PAIRS:
            out.append(f"pair:{o['color']} {o['shape']}")
        if o["position"] and (o["shape"], o["position"]) in HELDOUT_PLACEMENT:
            out.append(f"placement:{o['shape']} at {o['position']}")
    for p in HELDOUT_COOCCUR:
        if p <= shapes:
            out.append("together:" + "+".join(sorted(p)))
    return sorted(set(out))


def draw(seed):
    """100 held-out prompts drawn with this seed (ids 1-100)."""
    rng = random.Random(seed)
    items = []

    def add(category, objects, groups, distract=0.0, said=True):
        avoid = {o["color"] for o in objects}
        bg = bg_for(rng, avoid) if said else {"kind": "solid", "color": "white"}
        if not said and "white" in avoid:
            return False
        spec = {"background": bg, "objects": objects}
        prompt = scenes.caption(rng, spec, groups, said, distractors=distract)
        items.append({"id": len(items) + 1, "category": category, "prompt": prompt, "expect": spec,
                      "unseen": unseen_of(spec)})
        return True

    for i in range(25):
        c, s = seen_pair(rng)
        pos = rng.choice(POSITIONS + [None])
        if pos and (s, pos) in HELDOUT_PLACEMENT:
            pos = "center"
        add("single", [obj(c, s, position=pos, rng=rng)], [[0]], said=i % 12 != 5)
    pairs = sorted(HELDOUT_PAIRS)
    for i in range(18):
        c, s = pairs[i % len(pairs)]
        pos = rng.choice(POSITIONS + [None])
        if pos and (s, pos) in HELDOUT_PLACEMENT:
            pos = None
        add("single_unseen_pair", [obj(c, s, position=pos, rng=rng)], [[0]])
    cooc = [tuple(sorted(p)) for p in sorted(HELDOUT_COOCCUR, key=sorted)]
    for i in range(20):
        p1, p2 = rng.sample(POSITIONS, 2)
        if i < 8:
            s1, s2 = cooc[i % 2]
        else:
            s1, s2 = rng.sample(SHAPES, 2)
        c1, c2 = rng.sample(COLORS, 2)
        o1, o2 = obj(c1, s1, position=p1, rng=rng), obj(c2, s2, position=p2, rng=rng)
        if (c1, s1) in HELDOUT_PAIRS and i >= 8:
            o1["color"] = "red" if (c1, s1) != ("red", s1) else "blue"
        add("two_objects", [o1, o2], [[0], [1]])
    for i in range(12):
        c, s = seen_pair(rng)
        k = 2 if i % 3 else 3
        size = rng.choice(["small", "medium"]) if k == 3 else rng.choice(["small", "medium", "large"])
        add("same_kind_group", [obj(c, s, size=size, rng=rng) for _ in range(k)], [list(range(k))])
    for i in range(10):
        ps = rng.sample(POSITIONS, 3)
        cs = rng.sample(COLORS, 3)
        objs = []
        for c, p in zip(cs, ps):
            c2, s = c, rng.choice(SHAPES)
            while (c2, s) in HELDOUT_PAIRS or (s, p) in HELDOUT_PLACEMENT:
                s = rng.choice(SHAPES)
            objs.append(obj(c2, s, size=rng.choice(["small", "medium"]), position=p, rng=rng))
        if i % 2:
            objs[2]["position"] = None
        add("three_objects", objs, [[0], [1], [2]])
    for shape, pos in sorted(HELDOUT_PLACEMENT):
        for _ in range(3):
            c = rng.choice([c for c in COLORS if (c, shape) not in HELDOUT_PAIRS])
            add("unseen_placement", [obj(c, shape, position=pos, rng=rng)], [[0]])
    while len(items) < 100:
        c, s = seen_pair(rng)
        if rng.random() < 0.5:
            add("distractor_words", [obj(c, s, position=rng.choice(POSITIONS), rng=rng)], [[0]], distract=1.0)
        else:
            c2, s2 = seen_pair(rng)
            p1, p2 = rng.sample(POSITIONS, 2)
            if c2 == c:
                continue
            add("distractor_words", [obj(c, s, position=p1, rng=rng), obj(c2, s2, position=p2, rng=rng)],
                [[0], [1]], distract=1.0)
    for it in items:  # normalise: no object colour equal to a solid background colour
        bg = it["expect"]["background"]
        assert not (bg["kind"] == "solid" and any(o["color"] == bg["color"] for o in it["expect"]["objects"]))
    return items


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, nargs="+", default=[5], help="one or more seeds, 100 prompts each")
    ap.add_argument("--out", default=os.path.join(HERE, "heldout.json"))
    args = ap.parse_args()
    items = []
    for seed in args.seed:
        items += [dict(it, id=len(items) + it["id"]) for it in draw(seed)]
    doc = {
        "version": 1,
        "description": ("Held-out prompts for the easel-shapes model. 'expect' follows the scene spec of "
                        "training/scenes.py: background {kind: solid|gradient|transparent; color for solid; from "
                        "(top row) and to (bottom row) for gradient}; objects [{color, shape, size: small|medium|"
                        "large, position: one of the 9 places or null = anywhere}]. Geometry: S = min(width, "
                        "height); outer diameter of an object = sizes[size] * S; a named place centres the "
                        "object at (pos_x[col] * width, pos_y[row] * height) +- jitter * S, columns left/centre/"
                        "right, rows top/middle/bottom. Colours are the sRGB triples in palette. 'unseen' lists "
                        "what never appeared in training (colour-shape pair, two shapes together, shape at place)."),
        "palette": {k: list(v) for k, v in scenes.PALETTE.items()},
        "geometry": scenes.GEOMETRY,
        "positions": POSITIONS,
        "shapes": SHAPES,
        "shape_fill_ratio": fill_ratios(),
        "heldout_rules": {"pairs": sorted(map(list, HELDOUT_PAIRS)),
                          "together": sorted(sorted(p) for p in HELDOUT_COOCCUR),
                          "placements": sorted(map(list, HELDOUT_PLACEMENT))},
        "prompts": items,
    }
    if args.seed == [6]:
        doc["description"] += " Drawn with seed 6; not used for tuning."
    elif args.seed != [5]:
        doc["description"] += (f" Drawn with seeds {', '.join(map(str, args.seed))} (100 prompts each, numbered on); "
                               "used only to confirm an export chosen on other sets.")
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    cats = {}
    for it in items:
        cats[it["category"]] = cats.get(it["category"], 0) + 1
    print(len(items), cats)


def fill_ratios():
    """Area of each shape / area of its bounding box (helps a pixel scorer tell shapes apart)."""
    import numpy as np
    out = {}
    n = 400
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32)
    px, py = (xs + 0.5) / n * 2.2 - 1.1, (ys + 0.5) / n * 2.2 - 1.1
    for s in SHAPES:
        inside = scenes.shape_sdf(s, px, py) < 0
        rows, cols = np.where(inside.any(1))[0], np.where(inside.any(0))[0]
        bw, bh = cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1
        out[s] = {"fill": round(float(inside.sum()) / (bw * bh), 3), "aspect_w_over_h": round(bw / bh, 3)}
    return out


if __name__ == "__main__":
    main()
