# Seeded generator of the synthetic scenes Easel's default model is trained on: a structured scene spec,
# a caption in varied natural phrasing, and an anti-aliased straight-alpha RGBA rendering of the spec.
"""Scene specs, captions and rendering for the easel-shapes model.

Spec format (also what ``heldout.json`` stores as the expectation of each prompt)::

    {"background": {"kind": "solid", "color": "blue"}
                 | {"kind": "gradient", "from": "blue", "to": "pink"}    # from = top row, to = bottom row
                 | {"kind": "transparent"},
     "objects": [{"color": "red", "shape": "circle", "size": "small"|"medium"|"large",
                  "position": "top left"|"top"|"top right"|"left"|"center"|"right"|
                              "bottom left"|"bottom"|"bottom right"|null}]}   # null = anywhere

A prompt that names no background gets a white solid background. Geometry (see ``GEOMETRY``): with
S = min(width, height), an object of size s has outer radius ``SIZES[s] * S / 2``; a named position puts
the object's centre at (POS_X[col] * width, POS_Y[row] * height) give or take ``JITTER * S``. An
unnamed position is, in the training pool (``layout(..., groups)``), a canonical set of grid cells per group
(``TEMPLATES``: one object in the centre, two side by side, three in a triangle, other cells when those are
taken); elsewhere (autoencoder data, held-out expectations) it is anywhere that keeps the object inside the
canvas and apart from the others. The scorer accepts any position for an unnamed one.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import random
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# sRGB triples the model paints each colour name with (shipped as models/easel-shapes/palette.json).
PALETTE: Dict[str, Tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 130, 20),
    "yellow": (250, 215, 25),
    "green": (30, 160, 50),
    "cyan": (20, 200, 220),
    "blue": (30, 70, 220),
    "purple": (135, 50, 200),
    "pink": (245, 120, 185),
    "brown": (125, 75, 35),
    "black": (20, 20, 20),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
}
COLORS = list(PALETTE)
SHAPES = ["circle", "square", "triangle", "star", "heart", "ring", "diamond", "cross"]
SIZES = {"small": 0.14, "medium": 0.22, "large": 0.32}  # outer diameter as a fraction of min(W, H)
POSITIONS = ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"]
POS_X = [0.18, 0.5, 0.82]
POS_Y = [0.18, 0.5, 0.82]
JITTER = 0.02

# Held out of training entirely (used only by heldout.json): colour-shape pairs, shape pairs sharing a
# scene, and shape-at-position placements.
HELDOUT_PAIRS = {("green", "star"), ("purple", "heart"), ("orange", "ring"), ("cyan", "cross"),
                 ("brown", "diamond"), ("pink", "triangle")}
HELDOUT_COOCCUR = {frozenset(("triangle", "cross")), frozenset(("heart", "square"))}
HELDOUT_PLACEMENT = {("star", "bottom left"), ("ring", "top right")}

# Shape codes: latent channels 4-7 of the autoencoder (since session 5; checkpoint key `shape_codes`) hold each object's shape as a fixed
# 4-vector, painted over the object's coverage like a colour and area-pooled like the RGBA channels. The
# denoiser then paints a flat code where it paints the object's colour, and the decoder draws the exact
# outline from the coverage and the code. The codes are the 8 vertices of {-1, 1}^4 with an even number of
# -1s (any two differ in 2 or 4 places), scaled by 1.5: on an object, about the contrast of a colour.
SHAPE_CODE_AMP = 1.5
SHAPE_CODES: Dict[str, Tuple[float, ...]] = {
    s: tuple(SHAPE_CODE_AMP * c for c in v) for s, v in zip(SHAPES, [
        (1, 1, 1, 1), (-1, -1, 1, 1), (-1, 1, -1, 1), (-1, 1, 1, -1),
        (1, -1, -1, 1), (1, -1, 1, -1), (1, 1, -1, -1), (-1, -1, -1, -1)])}

GEOMETRY = {"sizes": SIZES, "pos_x": POS_X, "pos_y": POS_Y, "jitter": JITTER,
            "default_background": {"kind": "solid", "color": "white"},
            "gradient": "vertical: 'from' colour on the top row, 'to' colour on the bottom row"}


def pos_index(position: str) -> Tuple[int, int]:
    i = POSITIONS.index(position)
    return i % 3, i // 3


# ----------------------------------------------------------------------------------------------------
# Shape geometry: polygons in units of the outer radius (y grows downwards, as in the image).

def _star(n=5, inner=0.42):
    pts = []
    for k in range(2 * n):
        r = 1.0 if k % 2 == 0 else inner
        a = -math.pi / 2 + k * math.pi / n
        pts.append((r * math.cos(a), r * math.sin(a)))
    return pts


def _heart(m=72):
    pts = []
    for k in range(m):
        t = 2 * math.pi * k / m
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((x, -y))
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    s = max(max(xs) - min(xs), max(ys) - min(ys)) / 2
    return [((x - cx) / s, (y - cy) / s) for x, y in pts]


def _triangle():
    # equilateral, apex up, scaled so its bounding box is centred and its width is 2 radii * 0.95
    pts = [(0.0, -1.0), (math.sqrt(3) / 2, 0.5), (-math.sqrt(3) / 2, 0.5)]
    cy = (-1.0 + 0.5) / 2
    s = 0.95 / (math.sqrt(3) / 2)
    return [(x * s, (y - cy) * s) for x, y in pts]


def _cross(w=0.32, l=0.92):
    return [(-w, -l), (w, -l), (w, -w), (l, -w), (l, w), (w, w), (w, l), (-w, l), (-w, w), (-l, w), (-l, -w), (-w, -w)]


POLYGONS = {
    "square": [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)],
    "triangle": _triangle(),
    "star": _star(),
    "heart": _heart(),
    "diamond": [(0.0, -1.0), (0.72, 0.0), (0.0, 1.0), (-0.72, 0.0)],
    "cross": _cross(),
}
RING_INNER = 0.55


def _polygon_sdf(px: np.ndarray, py: np.ndarray, poly: Sequence[Tuple[float, float]]) -> np.ndarray:
    """Signed distance (negative inside) from points to a simple polygon (even-odd rule)."""
    v = np.asarray(poly, dtype=np.float32)
    a = v
    b = np.roll(v, -1, axis=0)
    P = np.stack([px.ravel(), py.ravel()], axis=1)[:, None, :]  # N,1,2
    e = (b - a)[None]  # 1,M,2
    w = P - a[None]  # N,M,2
    t = np.clip((w * e).sum(-1) / (e * e).sum(-1), 0.0, 1.0)
    d = w - e * t[..., None]
    dist = np.sqrt((d * d).sum(-1).min(1))
    ay, by = a[None, :, 1], b[None, :, 1]
    y = P[..., 1]
    x = P[..., 0]
    cond = (ay > y) != (by > y)
    xint = a[None, :, 0] + (y - ay) * (b[None, :, 0] - a[None, :, 0]) / np.where(by - ay == 0, 1e-9, by - ay)
    inside = (cond & (x < xint)).sum(1) % 2 == 1
    return np.where(inside, -dist, dist).reshape(px.shape)


def shape_sdf(shape: str, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """SDF in radius units for points (px, py) given relative to the shape centre in radius units."""
    if shape == "circle":
        return np.sqrt(px * px + py * py) - 1.0
    if shape == "ring":
        r = np.sqrt(px * px + py * py)
        mid, half = (1.0 + RING_INNER) / 2, (1.0 - RING_INNER) / 2
        return np.abs(r - mid) - half
    return _polygon_sdf(px, py, POLYGONS[shape])


# ----------------------------------------------------------------------------------------------------
# Layout: spec -> concrete circles (cx, cy, r) in pixels.

# Cells (col, row) of the 3x3 grid that an unplaced group of k objects takes in the canonical layout
# (layout(..., groups)), in order of preference: one object in the centre, two side by side, three in a triangle.
TEMPLATES = {
    1: [[(1, 1)]],
    2: [[(0, 1), (2, 1)], [(1, 0), (1, 2)], [(0, 0), (2, 2)], [(2, 0), (0, 2)]],
    3: [[(0, 0), (2, 0), (1, 2)], [(0, 2), (2, 2), (1, 0)], [(0, 0), (0, 2), (2, 1)], [(2, 0), (2, 2), (0, 1)],
        [(0, 0), (1, 1), (2, 2)], [(2, 0), (1, 1), (0, 2)]],
}
# TEMPLATES[k], then every other set of k cells in a fixed order: the fallbacks when named positions leave no
# template free or apart enough.
_CELLS = [(c, r) for r in range(3) for c in range(3)]
CELL_SETS = {k: t + [list(cs) for cs in itertools.combinations(_CELLS, k) if sorted(cs) not in map(sorted, t)]
             for k, t in TEMPLATES.items()}


def layout(spec: dict, width: int, height: int, rng: random.Random,
           groups: Optional[List[List[int]]] = None) -> List[Tuple[float, float, float]]:
    """Spec -> one circle (cx, cy, r) in pixels per object.

    Named positions are grid cells give or take JITTER. Unplaced objects go anywhere apart from the others
    (random), or, when ``groups`` is given (canonical layout, what the model trains on since step 80,109), each
    unplaced group takes the first cell set of TEMPLATES (then of all cell sets) that is free and at least
    0.03 S from everything placed before it, or the set with the widest gap when none is."""
    S = min(width, height)
    placed: List[Tuple[float, float, float]] = []
    objs = spec["objects"]
    result: Dict[int, Tuple[float, float, float]] = {}

    def at_cell(col: int, row: int, r: float) -> Tuple[float, float, float]:
        return (POS_X[col] * width + rng.uniform(-JITTER, JITTER) * S,
                POS_Y[row] * height + rng.uniform(-JITTER, JITTER) * S, r)

    def gap(cx: float, cy: float, r: float, others: List[Tuple[float, float, float]]) -> float:
        return min([math.hypot(cx - x, cy - y) - r - q for x, y, q in others] or [1e9])

    if groups is not None:
        for i, o in enumerate(objs):
            if o["position"] is not None:
                col, row = pos_index(o["position"])
                result[i] = at_cell(col, row, SIZES[o["size"]] * S / 2)
                placed.append(result[i])
        for g in groups:
            free = [i for i in g if objs[i]["position"] is None]
            if not free:
                continue
            r = SIZES[objs[free[0]]["size"]] * S / 2
            best = None
            for cells in CELL_SETS[len(free)]:
                pts = [(POS_X[c] * width, POS_Y[w] * height, r) for c, w in cells]
                g_min = min(gap(x, y, r, placed + pts[:j] + pts[j + 1:]) for j, (x, y, _) in enumerate(pts))
                if best is None or g_min > best[0]:
                    best = (g_min, cells)
                if g_min > 0.03 * S:
                    break
            for i, (c, w) in zip(free, best[1]):
                result[i] = at_cell(c, w, r)
                placed.append(result[i])
        return [result[i] for i in range(len(objs))]

    order = sorted(range(len(objs)), key=lambda i: objs[i]["position"] is None)
    for i in order:
        o = objs[i]
        r = SIZES[o["size"]] * S / 2
        if o["position"] is not None:
            col, row = pos_index(o["position"])
            cx, cy, _ = at_cell(col, row, r)
        else:
            best = None
            for _ in range(60):
                cx = rng.uniform(r + 2, width - r - 2)
                cy = rng.uniform(r + 2, height - r - 2)
                g = gap(cx, cy, r, placed)
                if best is None or g > best[0]:
                    best = (g, cx, cy)
                if g > 0.03 * S:
                    break
            cx, cy = best[1], best[2]
        placed.append((cx, cy, r))
        result[i] = (cx, cy, r)
    return [result[i] for i in range(len(objs))]


def _srgb01(name: str) -> np.ndarray:
    return np.asarray(PALETTE[name], dtype=np.float32) / 255.0


def render(spec: dict, width: int, height: int, rng: random.Random,
           placements: Optional[List[Tuple[float, float, float]]] = None, codes: bool = False):
    """Spec -> float32 [H, W, 4] straight-alpha RGBA in [0, 1] (anti-aliased by coverage from the SDF).

    codes=True: returns (rgba, code) where code [H, W, 4] is every object's SHAPE_CODES vector composited
    with the same coverage over 0 (no object)."""
    bg = spec["background"]
    prem = np.zeros((height, width, 4), dtype=np.float32)  # premultiplied
    code = np.zeros((height, width, 4), dtype=np.float32) if codes else None
    if bg["kind"] == "solid":
        prem[..., :3] = _srgb01(bg["color"])
        prem[..., 3] = 1.0
    elif bg["kind"] == "gradient":
        t = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None, None]
        prem[..., :3] = (1 - t) * _srgb01(bg["from"]) + t * _srgb01(bg["to"])
        prem[..., 3] = 1.0
    if placements is None:
        placements = layout(spec, width, height, rng)
    for o, (cx, cy, r) in zip(spec["objects"], placements):
        x0, x1 = max(0, int(cx - r - 2)), min(width, int(cx + r + 3))
        y0, y1 = max(0, int(cy - r - 2)), min(height, int(cy + r + 3))
        if x1 <= x0 or y1 <= y0:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        px, py = (xs + 0.5 - cx) / r, (ys + 0.5 - cy) / r
        d = shape_sdf(o["shape"], px, py) * r  # pixels
        cov = np.clip(0.5 - d, 0.0, 1.0)[..., None]
        col = np.concatenate([_srgb01(o["color"]), [1.0]]).astype(np.float32)
        prem[y0:y1, x0:x1] = col * cov + prem[y0:y1, x0:x1] * (1 - cov)
        if code is not None:
            sc = np.asarray(SHAPE_CODES[o["shape"]], dtype=np.float32)
            code[y0:y1, x0:x1] = sc * cov + code[y0:y1, x0:x1] * (1 - cov)
    out = prem.copy()
    a = prem[..., 3:4]
    out[..., :3] = np.where(a > 1e-6, prem[..., :3] / np.maximum(a, 1e-6), 0.0)
    out = np.clip(out, 0.0, 1.0)
    return (out, code) if codes else out


# ----------------------------------------------------------------------------------------------------
# Spec sampling.

def _allowed(color: str, shape: str, position: Optional[str], bg: dict) -> bool:
    if (color, shape) in HELDOUT_PAIRS:
        return False
    if position is not None and (shape, position) in HELDOUT_PLACEMENT:
        return False
    if bg["kind"] == "solid" and bg["color"] == color:
        return False
    if bg["kind"] == "gradient" and color in (bg["from"], bg["to"]):
        return False
    return True


def sample_background(rng: random.Random) -> Tuple[dict, bool]:
    """-> (background, said); unsaid means the default white background."""
    u = rng.random()
    if u < 0.06:
        return {"kind": "solid", "color": "white"}, False
    if u < 0.56:
        return {"kind": "solid", "color": rng.choice(COLORS)}, True
    if u < 0.78:
        a, b = rng.sample(COLORS, 2)
        return {"kind": "gradient", "from": a, "to": b}, True
    return {"kind": "transparent"}, True


def sample_spec(rng: random.Random, max_objects: int = 3, exclude_heldout: bool = True,
                group_boost: float = 0.0) -> Tuple[dict, list, bool]:
    """-> (spec, groups, background_said). ``groups`` lists (indices of objects) phrased together.

    ``group_boost`` > 0 (training only) makes that share of the scenes a same-kind group of two or three
    alone, the layout the model miscounts most; at 0 no random number is drawn for it, so the stream of scenes
    (and every pool and held-out set made before) is unchanged."""
    bg, said = sample_background(rng)
    weights = {1: [1, 0, 0], 2: [0.45, 0.55, 0], 3: [0.3, 0.35, 0.35]}[max_objects]
    if group_boost > 0 and max_objects == 3 and rng.random() < group_boost:
        parts = [rng.choice([2, 3])]
    else:
        n = rng.choices([1, 2, 3], weights=weights)[0]
        if n == 1:
            parts = [1]
        elif n == 2:
            parts = rng.choice([[2], [1, 1], [1, 1]])
        else:
            parts = rng.choice([[3], [2, 1], [1, 2], [1, 1, 1], [1, 1, 1]])
    for _ in range(100):
        objects, groups = [], []
        used_pos = set()
        ok = True
        for k in parts:
            size = rng.choices(["small", "medium", "large"], weights=[0.3, 0.4, 0.3])[0]
            color, shape = rng.choice(COLORS), rng.choice(SHAPES)
            if k == 1 and rng.random() < 0.7:
                free = [p for p in POSITIONS if p not in used_pos]
                position = rng.choice(free)
                used_pos.add(position)
            else:
                position = None
            if exclude_heldout and not _allowed(color, shape, position, bg):
                ok = False
                break
            if not exclude_heldout and bg["kind"] == "solid" and bg["color"] == color:
                ok = False
                break
            idx = []
            for _ in range(k):
                idx.append(len(objects))
                objects.append({"color": color, "shape": shape, "size": size, "position": position})
            groups.append(idx)
        if ok and exclude_heldout:
            shapes = {o["shape"] for o in objects}
            if any(p <= shapes for p in HELDOUT_COOCCUR):
                ok = False
        if ok:
            return {"background": bg, "objects": objects}, groups, said
    return sample_spec(rng, 1, exclude_heldout)


# ----------------------------------------------------------------------------------------------------
# Captions.

POS_PHRASES = {
    "top left": ["in the top left corner", "at the top left", "in the top left", "top left", "in the upper left corner", "at the top-left"],
    "top": ["at the top", "at the top center", "at the top middle", "in the top center", "top"],
    "top right": ["in the top right corner", "at the top right", "in the top right", "top right", "in the upper right corner", "at the top-right"],
    "left": ["on the left", "at the left", "on the left side", "left", "in the middle left"],
    "center": ["in the center", "in the middle", "at the center", "centered", "center", "in the centre"],
    "right": ["on the right", "at the right", "on the right side", "right", "in the middle right"],
    "bottom left": ["in the bottom left corner", "at the bottom left", "in the bottom left", "bottom left", "in the lower left corner", "at the bottom-left"],
    "bottom": ["at the bottom", "at the bottom center", "at the bottom middle", "in the bottom center", "bottom"],
    "bottom right": ["in the bottom right corner", "at the bottom right", "in the bottom right", "bottom right", "in the lower right corner", "at the bottom-right"],
}
COUNT_WORDS = {2: "two", 3: "three"}
PLURAL = {s: s + "s" for s in SHAPES}
PLURAL["cross"] = "crosses"

FILLER = ("the of and with in on at a an is are this that picture image photo drawing illustration art "
          "digital simple flat minimal cute beautiful nice shape shapes object objects icon logo graphic "
          "vector clean high quality detailed render rendered style please draw make show me some very "
          "bright dark light pastel colored coloured painting poster sticker background scene canvas "
          "pretty little big tiny huge giant sharp smooth bold solid plain vivid neon glossy matte "
          "happy sad funny cool awesome amazing modern retro vintage abstract geometric 4k 8k hd "
          "masterpiece trending artstation by for from to it its my your our their there here".split())
EXTRA_WORDS = ("dog cat house tree car sun moon sky water fire city person man woman child bird fish "
               "flower garden mountain river ocean beach forest road window door table chair book phone "
               "computer music love time world life day night year people way thing hand eye head face "
               "friend family school work home room money story game team place name word idea power "
               "lots many few every each other another same different new old good great best first last "
               "long short high low early late young important public bad able").split()


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def group_phrase(rng: random.Random, objs: List[dict], with_position: bool = True, prefix_ok: bool = False) -> str:
    o = objs[0]
    k = len(objs)
    adj = []
    if o["size"] != "medium":
        adj.append(o["size"])
    elif rng.random() < 0.08:
        adj.append("medium")
    adj.append(o["color"])
    noun = o["shape"] if k == 1 else PLURAL[o["shape"]]
    body = " ".join(adj + [noun])
    if k == 1:
        det = "one" if rng.random() < 0.15 else _article(body)
    else:
        det = COUNT_WORDS[k]
    phrase = f"{det} {body}"
    if with_position and o["position"] is not None:
        pp = rng.choice(POS_PHRASES[o["position"]])
        if prefix_ok and rng.random() < 0.15 and " " in pp:
            phrase = f"{pp}, {phrase}" if rng.random() < 0.5 else f"{pp} {phrase}"
        else:
            phrase = f"{phrase} {pp}"
    return phrase


def background_phrase(rng: random.Random, bg: dict) -> Tuple[str, bool]:
    """-> (phrase, prepositional)."""
    if bg["kind"] == "solid":
        c = bg["color"]
        an = _article(c)
        choices = [(f"on {an} {c} background", True), (f"{c} background", False), (f"with {an} {c} background", True),
                   (f"against {an} {c} background", True), (f"on a plain {c} background", True), (f"on {c}", True),
                   (f"{an} {c} background", False)]
    elif bg["kind"] == "gradient":
        a, b = bg["from"], bg["to"]
        choices = [(f"on a gradient from {a} to {b}", True), (f"a gradient from {a} to {b}", False),
                   (f"on {_article(a)} {a} to {b} gradient", True), (f"{a} to {b} gradient background", False),
                   (f"with a gradient background from {a} to {b}", True),
                   (f"on a gradient background from {a} to {b}", True)]
    else:
        choices = [("on a transparent background", True), ("transparent background", False),
                   ("with a transparent background", True), ("with no background", True),
                   ("on transparent", True), ("a transparent background", False)]
    return rng.choice(choices)


# A caption is built as labelled words: (word, label) with label ("obj", g) for the words of group g's phrase
# (g indexes ``groups``), ("bg",) for the background phrase and None for joining and distractor words. The
# labels let training tell the text encoder which object (or the background) each token describes
# (train.py, the text encoder's auxiliary loss); the text is the words joined by single spaces.
Words = List[Tuple[str, Optional[tuple]]]


def _words(text: str, label: Optional[tuple]) -> Words:
    return [(w, label) for w in text.split(" ")]


def _cat(a: Words, sep: str, b: Words) -> Words:
    """a + sep + b for sep in " ", ", ", " and ", " with " (a comma sticks to the word before it)."""
    if sep == ", ":
        return a[:-1] + [(a[-1][0] + ",", a[-1][1])] + b
    if sep == " ":
        return a + b
    return a + [(sep.strip(), None)] + b


_JOIN2 = [(" and ",), (", ",), (" and ",)]
_JOIN3 = [(", ", " and "), (", ", ", and "), (" and ", " and "), (", ", ", ")]


def _join(rng: random.Random, parts: List[Words]) -> Words:
    if len(parts) == 1:
        return parts[0]
    seps = rng.choice(_JOIN2 if len(parts) == 2 else _JOIN3)
    out = parts[0]
    for sep, part in zip(seps, parts[1:]):
        if sep == ", and ":
            out = _cat(_cat(out, ", ", [("and", None)]), " ", part)
        else:
            out = _cat(out, sep, part)
    return out


def pseudo_word(rng: random.Random) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join(rng.choice(letters) for _ in range(rng.randint(3, 9)))


def caption_words(rng: random.Random, spec: dict, groups: List[List[int]], bg_said: bool,
                  distractors: float = 0.3) -> Words:
    """The caption of a spec as labelled words (see ``Words``); ``caption`` joins them."""
    objs = spec["objects"]
    gp = [_words(group_phrase(rng, [objs[i] for i in g], prefix_ok=len(groups) == 1), ("obj", gi))
          for gi, g in enumerate(groups)]
    rng.shuffle(gp) if rng.random() < 0.3 else None
    body = _join(rng, gp)
    if bg_said:
        bp_text, prep = background_phrase(rng, spec["background"])
        bp = _words(bp_text, ("bg",))
        u = rng.random()
        if prep:
            words = _cat(body, " ", bp) if u < 0.6 else (_cat(body, ", ", bp) if u < 0.8 else _cat(bp, ", ", body))
        else:
            words = _cat(bp, ", ", body) if u < 0.4 else (_cat(body, ", ", bp) if u < 0.8 else _cat(bp, " with ", body))
    else:
        words = body
    if rng.random() < distractors:
        words = list(words)  # a distractor phrase ("a picture of") is one element until the end
        for _ in range(rng.randint(1, 3)):
            w = pseudo_word(rng) if rng.random() < 0.2 else rng.choice(FILLER + EXTRA_WORDS)
            if rng.random() < 0.3:
                w = rng.choice(["a picture of", "an image of", "a drawing of", "draw", "please draw", "a photo of"])
                words.insert(0, (w, None))
            else:
                words.insert(rng.randint(0, len(words)), (w, None))
        words = [(x, lab) for w, lab in words for x in w.split(" ")]
    if rng.random() < 0.2:
        words = [(words[0][0][0].upper() + words[0][0][1:], words[0][1])] + words[1:]
    if rng.random() < 0.1:
        words = words[:-1] + [(words[-1][0] + ".", words[-1][1])]
    return words


def caption(rng: random.Random, spec: dict, groups: List[List[int]], bg_said: bool,
            distractors: float = 0.3) -> str:
    return " ".join(w for w, _ in caption_words(rng, spec, groups, bg_said, distractors))


def sample_labelled(rng: random.Random, max_objects: int = 3, distractors: float = 0.3,
                    group_boost: float = 0.0) -> Tuple[Words, dict, list]:
    """-> (labelled caption words, spec, groups): what the text encoder's auxiliary loss learns from."""
    spec, groups, said = sample_spec(rng, max_objects, group_boost=group_boost)
    return caption_words(rng, spec, groups, said, distractors), spec, groups


def sample(rng: random.Random, max_objects: int = 3, distractors: float = 0.3) -> Tuple[str, dict]:
    spec, groups, said = sample_spec(rng, max_objects)
    return caption(rng, spec, groups, said, distractors), spec


def bpe_corpus(n: int = 40000, seed: int = 1234) -> List[str]:
    """Texts the tokenizer is trained on: captions (all vocabulary words, incl. held-out ones) + fillers."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        spec, groups, said = sample_spec(rng, 3, exclude_heldout=False)
        texts.append(caption(rng, spec, groups, said, distractors=0.0))
    texts += FILLER * 3 + EXTRA_WORDS * 2
    return texts


def to_png(rgba01: np.ndarray, path: str) -> None:
    """Write an RGBA float image as PNG (pure Python zlib, no extra dependency)."""
    import struct
    import zlib
    img = (np.clip(rgba01, 0, 1) * 255 + 0.5).astype(np.uint8)
    h, w = img.shape[:2]
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    r = random.Random(0)
    for i in range(12):
        c, s = sample(r)
        print(c)
        to_png(render(s, 256, 256, r), f"/tmp/scene{i}.png")
