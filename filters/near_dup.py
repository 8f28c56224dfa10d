"""Near-duplicate search primitives for the dedup stage (pure: no Beam, no I/O).

Issue 3's Beam stage groups records by the keys these functions produce; the functions here
are also the single-machine reference the tests compare against brute force.

- Perceptual hashes (64-bit pHash/dHash): every pair within Hamming distance <= k is found
  exactly by the pigeonhole principle. Cut the 64 bits into k+1 blocks: two hashes at distance
  <= k agree on at least one whole block. Group by (block index, block value), verify the
  distance inside each bucket. A pair is reported only from the FIRST block it agrees on, so
  no global de-duplication of pairs is needed.
- Colour: the hashes see grey levels only, so images also carry the mean CIELAB colour of each
  quarter (`colour_signature`); a pair near by its hashes must be near in colour too.
- Captions: MinHash (datasketch's, batched: `caption_signatures_many`) with LSH banding; records sharing a band's values are
  candidates, and a candidate pair is verified on the exact Jaccard of the two captions'
  word n-gram sets (`caption_shingle_hashes`; the MinHash estimate for captions too long to
  store them), so the bands can favour recall.
- Connected components: labelled by the smallest node (scipy; union-find as the reference).
- Leader clustering inside a component (`greedy_leaders`): survivors that no chain can join;
  `LeaderIndex` finds the survivors a member can be near with the same block and band keys,
  and for captions with n-gram sets by prefix filtering (`caption_prefix`, exact).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from typing import Callable, Hashable, Iterable, Optional, Sequence

import numpy as np

from mmcurate.filters.letterbox import clip_without_bars

HASH_BITS = 64
PHASH_INPUT_SIDE = 32  # pHash's own input size
DHASH_INPUT_SIDE = 128  # images are box-reduced to about this short side before dHash


# -- signatures (computed once per kept sample, in prepare) ---------------------------------
def image_hashes(img, mirror: bool = False) -> dict[str, Optional[int]]:
    """64-bit pHash and dHash (imagehash) of a decoded image, and of its mirror image when
    asked. Both start from a grey copy box-reduced to about 128 px: pHash is taken of its
    32x32 box average (pHash's own input size), dHash with imagehash's own Lanczos resize of
    it. Twice as fast as imagehash on the full image, under a bit apart on average; a box
    average to dHash's 9x8 instead is faster still but loses precision (benchmarks/RESULTS.md)."""
    import imagehash
    from PIL import Image, ImageOps

    grey = img.convert("L")
    factor = min(grey.size) // DHASH_INPUT_SIDE
    if factor > 1:
        grey = grey.reduce(factor)
    square = grey.resize((PHASH_INPUT_SIDE, PHASH_INPUT_SIDE), Image.Resampling.BOX)
    out = {"phash": _bits(imagehash.phash(square)), "dhash": _bits(imagehash.dhash(grey)), "phash_mirror": None, "dhash_mirror": None}
    if mirror:
        out.update(phash_mirror=_bits(imagehash.phash(ImageOps.mirror(square))), dhash_mirror=_bits(imagehash.dhash(ImageOps.mirror(grey))))
    return out


# -- colour (the hashes above see only grey levels) ------------------------------------------
# pHash and dHash of a red square, a blue one and a white one are identical, and so are those of
# a product photo in two colours. Images (and each sampled frame of a video clip) therefore also
# carry their mean colour in a 2x2 grid, in CIELAB, and two images are near only when every cell
# is within `dedup.max_colour_distance`.
# (imagehash's colorhash is not used: its hue and saturation bins have hard edges, so a slight
# tone change flips a pixel's bin, and Hamming distance over its bits is no colour difference.)
COLOUR_GRID = 2  # cells per side
COLOUR_CELLS = COLOUR_GRID * COLOUR_GRID
COLOUR_BYTES = 3 * COLOUR_CELLS  # per cell: L * 2.55, a + 128, b + 128, each rounded to a byte
COLOUR_LIGHTNESS_WEIGHT = 0.5  # lightness counts half: brightness edits are common in copies
_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def colour_signature(img) -> bytes:
    """The mean colour of each cell of a 2x2 grid (row-major) of an image, in CIELAB (D65),
    as 12 bytes. Computed here in a few lines of the CIE formulas rather than with lcms
    (PIL's ImageCms), whose rounding may differ between builds: signatures must be reproducible."""
    from PIL import Image

    rgb = img if img.mode == "RGB" else img.convert("RGB")  # (a grey video frame; prepare's images are RGB already)
    cells = np.asarray(rgb.resize((COLOUR_GRID, COLOUR_GRID), Image.Resampling.BOX), dtype=np.float64).reshape(-1, 3) / 255.0
    linear = np.where(cells <= 0.04045, cells / 12.92, ((cells + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _WHITE_D65
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = np.stack([(116 * f[:, 1] - 16) * 2.55, 500 * (f[:, 0] - f[:, 1]) + 128, 200 * (f[:, 1] - f[:, 2]) + 128], axis=1)
    return np.clip(np.round(lab), 0, 255).astype(np.uint8).tobytes()


def mirror_colour(colours: np.ndarray) -> np.ndarray:
    """(n, 12) colour signatures -> those of the mirror images (each row's cells reversed)."""
    grid = colours.reshape(len(colours), COLOUR_GRID, COLOUR_GRID, 3)
    return np.ascontiguousarray(grid[:, :, ::-1]).reshape(len(colours), COLOUR_BYTES)


def colour_matrix(blobs: Sequence[Optional[bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """Colour signatures (None for audio and for media staged before them) -> an
    (n, 12) uint8 array (zeros where none) and which rows have one."""
    has = np.array([b is not None for b in blobs], dtype=bool)
    out = np.zeros((len(blobs), COLOUR_BYTES), dtype=np.uint8)
    if has.any():
        out[has] = np.frombuffer(b"".join(b for b in blobs if b is not None), dtype=np.uint8).reshape(-1, COLOUR_BYTES)
    return out, has


def colour_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise distance of (n, 12) colour signatures: the largest over the cells of the CIE76
    colour difference with lightness weighted by COLOUR_LIGHTNESS_WEIGHT."""
    d = (a.astype(np.float32) - b.astype(np.float32)).reshape(-1, COLOUR_CELLS, 3)
    d[..., 0] *= COLOUR_LIGHTNESS_WEIGHT / 2.55
    return np.sqrt((d * d).sum(axis=-1)).max(axis=-1)


def colour_near(a: np.ndarray, has_a: np.ndarray, b: np.ndarray, has_b: np.ndarray, max_distance: float) -> np.ndarray:
    """Pairs (row-wise, broadcast) whose colours do not tell them apart: within max_distance,
    or either has no colour signature."""
    return ~(has_a & has_b) | (colour_distance(a, b) <= max_distance)


IMAGE_SIGNATURE = "hashes+colour-v3"  # names an image's signature (v2: taken between letterbox bars; v3: one straight edge past them is enough): images staged under another are redone
VIDEO_SIGNATURE = "frames-v4"  # names the clip signature (v3: taken between letterbox bars; v4: as images v3): clips staged under another are redone


def frame_hashes(images: Sequence, mirror: bool = False) -> dict:
    """A video clip's signature: `image_hashes` of each sampled frame, in time order, as flat
    [phash, dhash, phash, dhash, ...] lists (the mirror images' too when asked), and each
    frame's `colour_signature`, concatenated (`frame_colours`). Two clips are near-duplicates
    when the frames at most positions are, in grey levels and in colour (`majority_distance`).
    All of it between the clip's letterbox bars, if it has them (`clip_without_bars`)."""
    images = clip_without_bars(images)
    per_frame = [image_hashes(img, mirror) for img in images]
    out: dict = {"frame_hashes": [h for f in per_frame for h in (f["phash"], f["dhash"])], "frame_hashes_mirror": None,
                 "frame_colours": b"".join(colour_signature(img) for img in images)}
    if mirror:
        out["frame_hashes_mirror"] = [h for f in per_frame for h in (f["phash_mirror"], f["dhash_mirror"])]
    return out


def frame_colour_matrix(blobs: Sequence[Optional[bytes]], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Clips' `frame_colours` (None for images, audio and clips staged without them) -> an
    (n, width, 12) uint8 array, zero-padded like `frame_matrix`, and which rows have them."""
    has = np.array([bool(b) for b in blobs], dtype=bool)
    out = np.zeros((len(blobs), width, COLOUR_BYTES), dtype=np.uint8)
    for row, blob in enumerate(blobs):
        if blob:
            frames = np.frombuffer(blob, dtype=np.uint8).reshape(-1, COLOUR_BYTES)[:width]
            out[row, : len(frames)] = frames
    return out, has


def mirror_frame_colours(colours: np.ndarray) -> np.ndarray:
    """(n, F, 12) frame colour signatures -> those of the mirrored frames."""
    return mirror_colour(colours.reshape(-1, COLOUR_BYTES)).reshape(colours.shape)


def frame_matrix(lists: Sequence[Optional[Sequence[int]]]) -> tuple[np.ndarray, np.ndarray]:
    """Flat frame hash lists (None for images, audio and unsigned clips) -> an (n, F, 2)
    uint64 array of [phash, dhash] per frame, zero-padded to the longest, and the frame counts."""
    counts = np.array([len(x) // 2 if x else 0 for x in lists], dtype=np.int32)
    out = np.zeros((len(lists), int(counts.max()) if len(lists) else 0, 2), dtype=np.uint64)
    for row, x in enumerate(lists):
        if x:
            out[row, : len(x) // 2] = np.asarray(x, dtype=np.uint64).reshape(-1, 2)
    return out, counts


def pad_frames(frames: np.ndarray, width: int) -> np.ndarray:
    return frames if frames.shape[1] == width else np.pad(frames, ((0, 0), (0, width - frames.shape[1]), (0, 0)))


def frame_distances(fa: np.ndarray, fb: np.ndarray, image_hash: str) -> np.ndarray:
    """(n, F) bits between frames at the same positions under `image_hash`: one hash's, or
    the larger (`both`: both must be within k) or smaller (`either`) of pHash's and dHash's."""
    width = max(fa.shape[1], fb.shape[1])
    d = np.bitwise_count(pad_frames(fa, width) ^ pad_frames(fb, width))
    return {"phash": d[..., 0], "dhash": d[..., 1], "both": d.max(axis=-1), "either": d.min(axis=-1)}[image_hash].astype(np.int16)


def frames_comparable(na: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """Clip pairs that `majority_distance` decides: the same number of sampled frames, 2 or more.
    Others (images, video.frames=1, clips staged without frame hashes) are compared by the
    middle frame's hashes alone."""
    return (na == nb) & (na > 1)


def majority_distance(fa: np.ndarray, na: np.ndarray, fb: np.ndarray, nb: np.ndarray, image_hash: str,
                      colours: Optional[tuple] = None, max_colour_distance: float = 0.0) -> np.ndarray:
    """Row-wise: the distance within which a strict majority of the frame positions lie (the
    2nd smallest of 3, the 3rd of 4 or 5). Two comparable clips are near-duplicates when it is
    at most k: most of their frames match, whichever they are. Not all: in fast motion a copy
    whose timeline is a few frames off differs by 10-20 bits at some positions, the middle one
    included; not one: distinct videos pass through the same black or title frame.
    `colours` = (frame colours a, has a, frame colours b, has b) (`frame_colour_matrix`): a
    position whose colours are beyond max_colour_distance (> 0) matches at no distance."""
    d = frame_distances(fa, fb, image_hash)
    if not d.shape[1]:
        return np.zeros(len(d), dtype=np.int16)
    if colours is not None and max_colour_distance > 0:
        d = np.where(_frame_colours_far(*colours, d.shape, max_colour_distance), HASH_BITS + 1, d)
    n = np.broadcast_to(np.minimum(na, nb), (len(d),))
    d = np.where(np.arange(d.shape[1]) < n[:, None], d, HASH_BITS + 1)  # padding sorts last
    return np.sort(d, axis=1)[np.arange(len(d)), np.clip(n // 2, 0, d.shape[1] - 1)]


def _frame_colours_far(ca: np.ndarray, has_a: np.ndarray, cb: np.ndarray, has_b: np.ndarray, shape: tuple, max_distance: float) -> np.ndarray:
    """(n, F) positions where both clips have colours and they are beyond max_distance."""
    ca, cb = pad_frames(ca, shape[1]), pad_frames(cb, shape[1])
    ca, cb = np.broadcast_to(ca, (shape[0], *ca.shape[1:])), np.broadcast_to(cb, (shape[0], *cb.shape[1:]))
    far = colour_distance(ca.reshape(-1, COLOUR_BYTES), cb.reshape(-1, COLOUR_BYTES)).reshape(shape) > max_distance
    both = np.broadcast_to(has_a, (shape[0],)) & np.broadcast_to(has_b, (shape[0],))
    return far & both[:, None]


def _bits(h) -> int:
    """An ImageHash's 64 bits as an unsigned int, row-major, first bit most significant
    (the same order as `str(h)`'s hex, without building the string)."""
    return int.from_bytes(np.packbits(np.asarray(h.hash, dtype=bool).ravel()).tobytes(), "big")


def caption_signature(text: str, num_perm: int = 128, ngram: int = 3) -> bytes:
    """The caption's MinHash as little-endian uint32 bytes: equal to datasketch's
    `MinHash(num_perm, seed=1)` updated with its word n-grams (`shingles`)."""
    return caption_signatures_many([text], num_perm, ngram)[0][0]


def signature_matrix(blobs: Sequence[bytes], num_perm: int) -> np.ndarray:
    """n MinHash signatures (bytes) -> an (n, num_perm) uint32 matrix."""
    if not blobs:
        return np.zeros((0, num_perm), dtype=np.uint32)
    return np.frombuffer(b"".join(blobs), dtype="<u4").reshape(len(blobs), num_perm).astype(np.uint32)


def signature_rows(blobs: Sequence[Optional[bytes]], num_perm: int) -> np.ndarray:
    """MinHash signatures that may be None -> an object array of uint32 rows (or None), as
    `caption_similarity` takes them."""
    rows = np.full(len(blobs), None, dtype=object)
    have = [i for i, b in enumerate(blobs) if b is not None]
    if have:
        rows[have] = list(signature_matrix([blobs[i] for i in have], num_perm))
    return rows


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """datasketch's `MinHash.jaccard`: the fraction of equal hash values (row-wise)."""
    return np.mean(a == b, axis=-1)


CLIP_BITS = 15  # a video's clips are rows row << CLIP_BITS | clip (pipelines/prepare.py)


def node_id(order_task, order_row):
    """A sample's node id in the duplicate graph: its input position packed into 63 bits
    (unique, deterministic, and numeric so the graph work stays in numpy)."""
    return (np.asarray(order_task, dtype=np.int64) << 40) | np.asarray(order_row, dtype=np.int64)


SURVIVOR_POLICIES = ("resolution", "key")


def survivor_rank(policy: str, key: str, source_quality: int) -> tuple:
    """Sort key of a cluster member; the smallest survives. `resolution`: the best source
    (pipelines/dedup.source_quality: the most original pixels; audio: the highest source sample
    rate, lossless first), then the smallest key; `key`: the smallest key."""
    if policy == "resolution":
        return (-int(source_quality or 0), key)
    if policy == "key":
        return (key,)
    raise ValueError(f"unknown survivor policy {policy!r}: one of {', '.join(SURVIVOR_POLICIES)}")


LOSSLESS_CODECS = ("flac", "alac", "wavpack", "ape", "tta", "mlp", "truehd")


_BIT_RATE_STEPS = 1 << 24  # bit rates rank in kbit/s, up to 16 Gbit/s


def audio_quality(original_sample_rate, original_codec: str, original_bit_rate=0) -> int:
    """Survivor rank of a near-duplicate sound (larger is better): the higher source sample
    rate, then a lossless source (pcm_*, flac, alac, ...) before a lossy one, then the higher
    source bit rate (an mp3 at 128 kbit/s before the same at 32; 24-bit before 16-bit)."""
    lossless = original_codec.startswith("pcm_") or original_codec in LOSSLESS_CODECS
    kbits = min(int(original_bit_rate or 0) // 1000, _BIT_RATE_STEPS - 1)
    return (2 * int(original_sample_rate or 0) + int(lossless)) * _BIT_RATE_STEPS + kbits


# -- clusters: one survivor per group -------------------------------------------------------
def greedy_leaders(n: int, near: Callable[[int, np.ndarray], np.ndarray], index: Optional["LeaderIndex"] = None,
                   same_as: Optional[np.ndarray] = None) -> np.ndarray:
    """Leader clustering of n members taken in survivor-rank order: member 0 leads; each next
    member joins the first (best-ranked) leader it is near (`near(i, leaders)` -> one bool
    per leader), else it leads a group of its own. Returns each member's leader (leaders
    point at themselves). Every member is near its own leader and no two leaders are near
    each other, so a group's diameter is at most twice the threshold; connected components
    instead join A and C through B however far apart A and C are.
    `index` narrows the leaders a member is compared with to those that can be near it.
    `same_as[i]` < i says member i is identical to an earlier one (`Nearness.same_as`): it
    follows that member's leader, which is the one the test would give it."""
    leader_of = np.arange(n)
    leaders = np.zeros(max(n, 1), dtype=np.int64)
    count = 0
    for i in range(n):
        if same_as is not None and same_as[i] < i:
            leader_of[i] = leader_of[same_as[i]]
            continue
        js = index.candidates(i) if index is not None else leaders[:count]
        hit = js[near(i, js)] if len(js) else ()
        if len(hit):
            leader_of[i] = hit.min()  # members are in rank order: the best-ranked near leader
            continue
        leaders[count] = i
        count += 1
        if index is not None:
            index.add(i)
    return leader_of


class Nearness:
    """`near(i, js)` for greedy_leaders over one component's members: the same test that made
    the duplicate graph's edges (dedup.duplicates, image_hash, max_distance, mirror,
    caption_threshold), between member i and each member in js; never between members of one
    `groups` value.

    Members are dicts with phash, dhash, phash_mirror, dhash_mirror (ints or None), colour
    (`colour_signature` or None), minhash (signature bytes, or None: without a caption, or
    where `needs_minhash` says no estimate needs it), caption_shingles (`caption_shingle_hashes`,
    or None: the MinHash estimate decides), and for video clips
    frame_hashes, frame_hashes_mirror and frame_colours (`frame_hashes`' or None:
    `majority_distance` decides between clips with them)."""

    def __init__(self, members: Sequence[dict], duplicates: str, image_hash: str, max_distance: int, mirror: bool,
                 caption_threshold: float, num_perm: int, groups: Optional[np.ndarray] = None, max_colour_distance: float = 0.0):
        self.duplicates, self.image_hash, self.k, self.mirror = duplicates, image_hash, max_distance, mirror
        self.max_colour_distance = max_colour_distance
        colours, self.has_colour = colour_matrix([m.get("colour") for m in members])
        self.colours = {"": colours, "_mirror": mirror_colour(colours)}
        self.groups = groups  # members of one group (clips of one video) are never near each other
        self.threshold = caption_threshold
        self.hashes = {}
        for name in ("phash", "dhash", "phash_mirror", "dhash_mirror"):
            values = [m.get(name) for m in members]
            self.hashes[name] = (np.array([v or 0 for v in values], dtype=np.uint64), np.array([v is not None for v in values]))
        captions = duplicates != "image"  # else captions are unused: none
        sigs = [m.get("minhash") if captions else None for m in members]
        self.shingles = [m.get("caption_shingles") if captions else None for m in members]  # exact n-gram sets, where staged
        self.frames = {o: frame_matrix([m.get("frame_hashes" + o) for m in members]) for o in ("", "_mirror")}
        frame_colours, has = frame_colour_matrix([m.get("frame_colours") for m in members], self.frames[""][0].shape[1])
        self.frame_colours = {"": (frame_colours, has), "_mirror": (mirror_frame_colours(frame_colours), has)}
        self.has_sig = np.array([s is not None for s in sigs], dtype=bool)
        self.has_caption = self.has_sig | np.array([s is not None for s in self.shingles], dtype=bool)
        self.sig_rows = signature_rows(sigs, num_perm)
        self.sigs = signature_matrix([s if s is not None else bytes(4 * num_perm) for s in sigs], num_perm) if self.has_sig.any() else None

    def same_as(self) -> Optional[np.ndarray]:
        """Per member, the first member identical to it in everything the test reads (itself if
        none, or if it lacks what the test reads): it is near whatever that one is near, so
        greedy_leaders need not ask. None for clips of videos (`groups`: an identical clip of
        the same video is not near)."""
        if self.groups is not None:
            return None
        n = len(self.has_colour)
        fields = [a for pair in self.hashes.values() for a in pair] + [self.colours[""], self.has_colour]
        fields += [a.reshape(n, -1) for pair in self.frames.values() for a in pair] + [self.frame_colours[""][0].reshape(n, -1)]
        if self.has_caption.any():
            fields += [self.has_sig, shingle_digests(self.shingles)] + ([self.sigs] if self.sigs is not None else [])
        same = np.arange(n)
        _, member, representative = identical_groups(same, fields, self._near_itself())
        same[member] = representative
        return same

    def _near_itself(self) -> np.ndarray:
        """Members that have what the test reads, so that two identical ones are near."""
        has = {kind: self.hashes[kind][1] for kind in ("phash", "dhash")}
        image = {"both": has["phash"] & has["dhash"], "either": has["phash"] | has["dhash"]}.get(self.image_hash, has.get(self.image_hash))
        caption = self.has_caption
        return {"image": image, "caption": caption, "both": image & caption}.get(self.duplicates, image | caption)

    def _within(self, kind: str, i: int, js: np.ndarray, a: str = "", b: str = "") -> np.ndarray:
        """Hash `kind` of i (its mirror when a == "_mirror") against js's (b likewise) within k."""
        hi, has_i = self.hashes[kind + a]
        hj, has_j = self.hashes[kind + b]
        return has_i[i] & has_j[js] & (np.bitwise_count(hi[i] ^ hj[js]) <= self.k)

    def image(self, i: int, js: np.ndarray) -> np.ndarray:
        kinds = ("phash", "dhash") if self.image_hash in ("both", "either") else (self.image_hash,)
        orientations = [("", "")] + ([("_mirror", ""), ("", "_mirror")] if self.mirror else [])
        near = np.zeros(len(js), dtype=bool)
        for a, b in orientations:  # the same orientation for both hashes under `both`
            per_kind = [self._within(kind, i, js, a, b) for kind in kinds]
            hit = np.logical_and.reduce(per_kind) if self.image_hash == "both" else np.logical_or.reduce(per_kind)
            hit &= self._colour_near(i, js, a, b)
            (fa, na), (fb, nb) = self.frames[a], self.frames[b]
            if fa.shape[1] and fb.shape[1]:  # video clips: most of their frames decide
                comparable = frames_comparable(na[i], nb[js])
                if comparable.any():
                    (ca, hca), (cb, hcb) = self.frame_colours[a], self.frame_colours[b]
                    d = majority_distance(fa[i : i + 1], na[i : i + 1], fb[js], nb[js], self.image_hash,
                                          (ca[i : i + 1], hca[i : i + 1], cb[js], hcb[js]), self.max_colour_distance)
                    hit = np.where(comparable, d <= self.k, hit)
            near |= hit
        return near

    def _colour_near(self, i: int, js: np.ndarray, a: str, b: str) -> np.ndarray:
        if self.max_colour_distance <= 0:
            return np.ones(len(js), dtype=bool)
        return colour_near(self.colours[a][i], self.has_colour[i], self.colours[b][js], self.has_colour[js], self.max_colour_distance)

    def caption(self, i: int, js: np.ndarray) -> np.ndarray:
        if not self.has_caption[i]:
            return np.zeros(len(js), dtype=bool)
        sig_i = self.sigs[i] if self.has_sig[i] else self.sig_rows[np.full(len(js), i)]  # (a row of Nones)
        similarity = caption_similarity(sig_i, self.sig_rows[js], [self.shingles[i]] * len(js), [self.shingles[j] for j in js.tolist()])
        return self.has_caption[js] & (similarity >= self.threshold)

    def __call__(self, i: int, js: np.ndarray) -> np.ndarray:
        if self.duplicates == "image":
            near = self.image(i, js)
        elif self.duplicates == "caption":
            near = self.caption(i, js)
        elif self.duplicates == "both":
            near = self.image(i, js) & self.caption(i, js)
        else:
            near = self.image(i, js) | self.caption(i, js)
        return near if self.groups is None else near & (self.groups[js] != self.groups[i])


class LeaderIndex:
    """The leaders a member can be near, for greedy_leaders: those sharing a pigeonhole block
    of a hash with it (any orientation), an LSH band of its caption signature, or a prefix
    hash of its caption's n-gram set (`caption_prefix`). No near leader is missed by images or
    between captions with sets (exactly), nor between others where the bands found the edges;
    a member is compared with a few leaders, not all of them."""

    def __init__(self, near: Nearness, caption_threshold: float, num_perm: int):
        self.near = near
        self.bounds = block_bounds(near.k)
        self.kinds = ("phash", "dhash") if near.image_hash == "either" else ("phash",) if near.image_hash == "both" else (near.image_hash,)
        self.images = near.duplicates in ("image", "both", "either")
        self.captions = near.duplicates in ("caption", "both", "either")
        self.bands, self.rows = lsh_params(caption_threshold, num_perm) if self.captions else (0, 0)
        self.threshold = caption_threshold
        self.table: dict[tuple, _Bucket] = {}

    def _keys(self, i: int) -> list[tuple]:
        keys = []
        if self.images:
            for kind in self.kinds:
                for name in (kind, kind + "_mirror") if self.near.mirror else (kind,):
                    values, has = self.near.hashes[name]
                    if has[i]:
                        keys += [(kind, b, v) for b, v in enumerate(block_values(int(values[i]), self.bounds))]
                column = 0 if kind == "phash" else 1
                for orientation in ("", "_mirror") if self.near.mirror else ("",):
                    frames, counts = self.near.frames[orientation]
                    if counts[i] > 1:  # clips near by most frames are near at some position
                        for pos in range(counts[i]):
                            h = int(frames[i, pos, column])
                            keys += [(kind, "frame", pos, b, v) for b, v in enumerate(block_values(h, self.bounds))]
        if self.captions and self.near.has_sig[i]:
            sig = self.near.sigs[i]
            keys += [("caption", b, sig[b * self.rows : (b + 1) * self.rows].tobytes()) for b in range(self.bands)]
        ngrams = self.near.shingles[i] if self.captions else None
        if ngrams is not None:  # an empty set is near only another empty one (Jaccard 1.0)
            keys += [("ngram", h) for h in caption_prefix(ngrams, self.threshold).tolist()] if ngrams else [("ngram", "empty")]
        return keys

    def candidates(self, i: int) -> np.ndarray:
        """The leaders sharing a key with member i, in no order, a leader once per shared key
        (cheaper to test twice than to sort and deduplicate)."""
        buckets = [b.items() for key in self._keys(i) if (b := self.table.get(key)) is not None]
        return np.concatenate(buckets) if buckets else np.zeros(0, dtype=np.int64)

    def add(self, i: int) -> None:
        for key in self._keys(i):
            bucket = self.table.get(key)
            if bucket is None:
                bucket = self.table[key] = _Bucket()
            bucket.append(i)


class _Bucket:
    """A growable int64 array: appends in amortised O(1), read as a numpy view."""

    __slots__ = ("data", "size")

    def __init__(self):
        self.data, self.size = np.empty(4, dtype=np.int64), 0

    def append(self, value: int) -> None:
        if self.size == len(self.data):
            self.data = np.concatenate([self.data, np.empty(len(self.data), dtype=np.int64)])
        self.data[self.size] = value
        self.size += 1

    def items(self) -> np.ndarray:
        return self.data[: self.size]


# -- Hamming neighbours --------------------------------------------------------------------
def block_bounds(k: int, bits: int = HASH_BITS) -> list[tuple[int, int]]:
    """k+1 contiguous bit ranges covering `bits`, sizes differing by at most one."""
    n = k + 1
    if not 0 <= k < bits:
        raise ValueError(f"k must be in [0, {bits - 1}]")
    base, extra = divmod(bits, n)
    bounds, start = [], 0
    for i in range(n):
        end = start + base + (1 if i < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


def block_values(h: int, bounds: Sequence[tuple[int, int]]) -> list[int]:
    return [(h >> start) & ((1 << (end - start)) - 1) for start, end in bounds]


def banded_pairs(items: Iterable[tuple[Hashable, int]], k: int) -> set[tuple[Hashable, Hashable]]:
    """Every pair of items within Hamming distance k (each pair once, keys as stored), on
    one machine, with the same search the Beam stage runs per partition."""
    items = list(items)
    keys = [key for key, _ in items]
    hashes = np.array([h for _, h in items], dtype=np.uint64)
    idx = np.arange(len(items), dtype=np.int64)
    bounds = block_bounds(k)
    pairs = set()
    for block in range(k + 1):
        a, b, _, _ = block_group_pairs(idx, hashes, block, bounds, k)
        pairs.update((keys[i], keys[j]) for i, j in zip(a.tolist(), b.tolist()))
    return pairs


def brute_force_pairs(items: Sequence[tuple[Hashable, int]], k: int, chunk: int = 1024) -> set[tuple[Hashable, Hashable]]:
    keys = [key for key, _ in items]
    hs = np.array([h for _, h in items], dtype=np.uint64)
    pairs = set()
    for s in range(0, len(hs), chunk):
        dist = np.bitwise_count(hs[s : s + chunk, None] ^ hs[None, :])
        i, j = np.nonzero(dist <= k)
        pairs.update((keys[s + a], keys[b]) for a, b in zip(i, j) if s + a < b)
    return pairs


# -- caption MinHash LSH --------------------------------------------------------------------
_WORDS = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, ngram: int = 3) -> set[bytes]:
    words = _WORDS.findall(text.casefold())
    if len(words) < ngram:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + ngram]).encode() for i in range(len(words) - ngram + 1)}


@functools.lru_cache(maxsize=8)
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations (a, b) for seed 1, as uint32."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=1).permutations
    return a.astype(np.uint32), b.astype(np.uint32)


_SIGNATURE_BATCH = 2048  # captions a step: about 12 n-grams x num_perm x 4 bytes each in flight


def caption_signatures_many(texts: Sequence[str], num_perm: int = 128, ngram: int = 3) -> list[tuple[bytes, Optional[bytes]]]:
    """(`caption_signature`, `caption_shingle_hashes`) of each text, prepare's one pass.

    Why not datasketch's MinHash itself: it hashes and permutes one caption at a time, ~60-90 us
    of numpy overhead a caption, most of a caption-only run's CPU. This is the same arithmetic
    (datasketch 2.0's affine32 scheme: sha1_hash32 of each n-gram, MurmurHash3's fmix32, then
    a * h + b mod 2^32 and the minimum per permutation) over a batch of captions at once;
    tests assert byte equality with datasketch (benchmarks/RESULTS.md for the speed)."""
    out: list[tuple[bytes, Optional[bytes]]] = []
    for at in range(0, len(texts), _SIGNATURE_BATCH):
        grams = [shingles(t, ngram) for t in texts[at : at + _SIGNATURE_BATCH]]
        out += zip(_minhash_rows(grams, num_perm), _shingle_set_rows(grams))
    return out


def _minhash_rows(grams: list[set[bytes]], num_perm: int) -> list[bytes]:
    a, b = _permutations(num_perm)
    counts = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
    hashed = np.frombuffer(b"".join([hashlib.sha1(g).digest()[:4] for gs in grams for g in gs]), dtype="<u4")
    values = a[:, None] * _fmix32(hashed)[None, :] + b[:, None]  # (num_perm, n-grams), wrapping mod 2^32
    rows = np.full((num_perm, len(grams)), np.iinfo(np.uint32).max, dtype=np.uint32)  # no n-gram: datasketch's empty MinHash
    has = counts > 0
    if has.any():  # (reduced along the contiguous axis: ~7x faster than along the other)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rows[:, has] = np.minimum.reduceat(values, starts[has], axis=1)
    return [row.tobytes() for row in np.ascontiguousarray(rows.T).astype("<u4", copy=False)]


def _shingle_set_rows(grams: list[set[bytes]]) -> list[Optional[bytes]]:
    """`caption_shingle_hashes` of each n-gram set: its 64-bit hashes sorted, sorted for the
    whole batch at once; None past MAX_EXACT_SHINGLES n-grams."""
    counts = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
    values = np.frombuffer(b"".join([hashlib.blake2b(g, digest_size=8).digest() for gs in grams for g in gs]), dtype="<u8")
    values = values[np.lexsort((values, np.repeat(np.arange(len(grams)), counts)))]
    ends = np.cumsum(counts).tolist()
    return [values[end - n : end].tobytes() if n <= MAX_EXACT_SHINGLES else None for n, end in zip(counts.tolist(), ends)]


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (datasketch's pre-mix of each n-gram's hash)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


MAX_EXACT_SHINGLES = 256  # a caption with more n-grams is compared by its MinHash estimate alone


def caption_shingle_hashes(text: str, ngram: int = 3) -> Optional[bytes]:
    """The caption's word n-gram set (`shingles`) as sorted 64-bit hashes, little-endian bytes:
    the exact set a candidate pair's Jaccard is computed on. A caption of 10-20 words takes
    64-144 bytes, less than its MinHash; None past MAX_EXACT_SHINGLES n-grams.

    Why exact: a 128-value MinHash estimates Jaccard with a standard error of ~0.035 near 0.8,
    so verifying on the estimate keeps about 1 in 20 true pairs apart and joins pairs below
    the threshold (benchmarks/RESULTS.md, "Caption dedup against datatrove")."""
    return _shingle_set_bytes(shingles(text, ngram))


def smallest_set_near_a_long_caption(threshold: float) -> int:
    """The fewest n-grams a caption needs to reach `threshold` against a caption without a
    stored set (more than MAX_EXACT_SHINGLES n-grams): Jaccard <= |A| / |B| < |A| / 257."""
    return math.ceil(threshold * (MAX_EXACT_SHINGLES + 1))


def needs_minhash(shingle_sets: Sequence[Optional[bytes]], threshold: float) -> np.ndarray:
    """Per caption: whether a MinHash estimate may ever decide one of its pairs. Not when it has
    an n-gram set smaller than `smallest_set_near_a_long_caption`: against a caption with a set
    the exact Jaccard decides, and against one without it cannot reach the threshold. The near
    stage ships a MinHash only where this says so (512 bytes a caption, 4x its set)."""
    bound = 8 * smallest_set_near_a_long_caption(threshold)  # (8 bytes an n-gram)
    return np.array([s is None or len(s) >= bound for s in shingle_sets], dtype=bool)


def caption_prefix(shingle_set: bytes, threshold: float) -> np.ndarray:
    """The n - ceil(threshold * n) + 1 smallest hashes of an n-gram set (`caption_shingle_hashes`,
    ascending): two sets with Jaccard >= threshold share at least one hash of their prefixes
    (prefix filtering: Bayardo et al., "Scaling up all pairs similarity search", 2007), so a
    search by prefix hashes misses no near pair. Empty for an empty set."""
    hashes = np.frombuffer(shingle_set, dtype="<u8")
    n = len(hashes)
    must_share = math.ceil(threshold * n - 1e-9)  # (0.7 * 10 is 7.000000000000001: round down)
    return hashes[: max(0, n - must_share + 1)] if n else hashes


def _shingle_set_bytes(grams: set[bytes]) -> Optional[bytes]:
    return _shingle_set_rows([grams])[0]


def shingle_jaccard(a: bytes, b: bytes) -> float:
    """Exact Jaccard of two `caption_shingle_hashes` sets (two empty sets: 1.0, as MinHash)."""
    x, y = set(np.frombuffer(a, dtype="<u8").tolist()), set(np.frombuffer(b, dtype="<u8").tolist())
    union = len(x | y)
    return len(x & y) / union if union else 1.0


def caption_similarity(sigs_a: np.ndarray, sigs_b: np.ndarray, shingles_a: Sequence[Optional[bytes]],
                       shingles_b: Sequence[Optional[bytes]]) -> np.ndarray:
    """Per pair of captions: the exact Jaccard of their n-gram sets where both have them, else
    the MinHash estimate (`estimated_jaccard`, row-wise; sigs_a may be one row for all). A
    MinHash row may be None: the near stage's signature joins send none for a caption whose set
    is too small to reach the threshold against a caption without one, so such a pair is 0.0."""
    similarity = np.zeros(len(shingles_b), dtype=np.float64)
    one_a = isinstance(sigs_a, np.ndarray) and sigs_a.dtype != object and sigs_a.ndim == 1
    estimate = []
    for p, (x, y) in enumerate(zip(shingles_a, shingles_b)):
        if x is not None and y is not None:
            similarity[p] = shingle_jaccard(x, y)
        elif (one_a or sigs_a[p] is not None) and sigs_b[p] is not None:
            estimate.append(p)
    if estimate:
        a = sigs_a if one_a else np.stack([sigs_a[p] for p in estimate])
        similarity[estimate] = estimated_jaccard(a, np.stack([sigs_b[p] for p in estimate]))
    return similarity


def shingle_digests(blobs: Sequence[Optional[bytes]]) -> np.ndarray:
    """A 64-bit digest per n-gram set (0 without one): rows are identical for the search only
    when their exact sets are too (`identical_groups`)."""
    return np.array([0 if b is None else int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "little") for b in blobs],
                    dtype=np.uint64)


@functools.lru_cache(maxsize=None)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) weighting a missed pair 19 times a false candidate (datasketch's
    optimiser; 16 x 8 at 0.8 and 128 permutations: a pair at Jaccard 0.8 becomes a candidate
    with probability 0.95, where the equal weighting of datasketch's MinHashLSH, 9 x 13, gives
    0.40). False candidates cost one verification each, and the verification is exact.
    Cached: the optimiser integrates numerically over every split (~30 ms), and each leader
    index of a component asks."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.05, 0.95)


# -- connected components -------------------------------------------------------------------
def union_find_labels(nodes: Iterable[Hashable], edges: Iterable[tuple[Hashable, Hashable]]) -> dict:
    """Each node -> the smallest node of its component."""
    parent = {n: n for n in nodes}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            parent[hi] = lo
    return {n: find(n) for n in parent}


# -- batched forms used by the Beam stage -----------------------------------------------------
def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads integer keys evenly over partitions."""
    z = np.asarray(x, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def block_array(hashes: np.ndarray, bounds, block: int) -> np.ndarray:
    start, end = bounds[block]
    return (hashes >> np.uint64(start)) & np.uint64((1 << (end - start)) - 1)


def run_bounds(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end indices of the runs of equal values in a sorted array."""
    if len(sorted_values) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    return starts, np.r_[starts[1:], len(sorted_values)]


def sub_block_masks(block: int, bounds, k: int) -> list[np.uint64]:
    """The bits outside top block `block`, cut into k+1 contiguous groups (as masks)."""
    start, end = bounds[block]
    rest = [p for p in range(HASH_BITS) if not start <= p < end]
    n = k + 1
    base, extra = divmod(len(rest), n)
    masks, at = [], 0
    for i in range(n):
        size = base + (1 if i < extra else 0)
        masks.append(np.uint64(sum(1 << p for p in rest[at : at + size])))
        at += size
    return masks


def _mask(bound: tuple[int, int]) -> np.uint64:
    start, end = bound
    return np.uint64(((1 << (end - start)) - 1) << start)


def pairs_in_runs(keys: np.ndarray, hashes: np.ndarray, ids: np.ndarray, k: int, reject: Sequence[np.uint64]):
    """Pairs (i < j positions) within distance k among items sorted by `keys`, for items with
    equal keys, minus pairs agreeing on any `reject` mask. Vectorised by offset: offset o
    compares every item with the one o places later (contiguous slices, cheap), until no run
    is longer than o."""
    out_a, out_b, out_d = [], [], []
    starts, ends = run_bounds(keys)
    run_len = np.repeat(ends - starts, ends - starts)
    next_compact = 2
    for o in range(1, len(keys)):
        if o == next_compact:  # drop runs too short to hold a pair o apart (runs stay contiguous)
            keep = run_len > o
            keys, hashes, ids, run_len = keys[keep], hashes[keep], ids[keep], run_len[keep]
            next_compact *= 2
        if len(keys) <= o:
            break
        same = keys[:-o] == keys[o:]
        if not same.any():
            break
        x = hashes[:-o] ^ hashes[o:]
        hit = np.flatnonzero(same & (np.bitwise_count(x) <= k))
        if not len(hit):
            continue
        x = x[hit]
        ok = np.ones(len(hit), dtype=bool)
        for m in reject:  # only on the (few) pairs within k
            ok &= (x & m) != 0
        hit, x = hit[ok], x[ok]
        if len(hit):
            out_a.append(ids[hit])
            out_b.append(ids[hit + o])
            out_d.append(np.bitwise_count(x).astype(np.int8))
    return out_a, out_b, out_d


def block_group_pairs(ids: np.ndarray, hashes: np.ndarray, block: int, bounds, k: int):
    """Pairs (ids a < b, distance) within Hamming distance k among items that agree on top
    block `block` and on no earlier top block, so each pair comes from exactly one block.

    Two-level pigeonhole: a pair within k that agrees on top block i has at most k differing
    bits elsewhere, so it also agrees on one of k+1 sub-blocks cut from the other bits. The
    bucket of (top value, sub-block value) is far smaller than the top bucket alone (for k=8:
    about 80x fewer comparisons on random hashes), and a pair is kept only in its first
    agreeing sub-block. The items may span many top-block values.
    Returns (a, b, dist, top bucket sizes)."""
    top = _mask(bounds[block])
    earlier_top = [_mask(b) for b in bounds[:block]]
    _, sizes = np.unique(hashes & top, return_counts=True)
    out_a, out_b, out_d = [], [], []
    subs = sub_block_masks(block, bounds, k)
    for j, sub in enumerate(subs):
        keys = hashes & (top | sub)
        order = np.argsort(keys)
        a, b, d = pairs_in_runs(keys[order], hashes[order], ids[order], k, earlier_top + subs[:j])
        out_a += a
        out_b += b
        out_d += d
    if not out_a:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.int8), sizes
    a, b = np.concatenate(out_a), np.concatenate(out_b)
    return np.minimum(a, b), np.maximum(a, b), np.concatenate(out_d), sizes


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 digests of each LSH band (splitmix over the band's values): two
    records share a band when its digests are equal. A 64-bit collision (~n^2 / 2^65 pairs in
    a bucket of n) only adds a candidate, and every candidate is verified."""
    out = np.empty((len(sigs), bands), dtype=np.uint64)
    for b in range(bands):
        h = np.full(len(sigs), b + 1, dtype=np.uint64)
        for col in range(b * rows, (b + 1) * rows):
            h = mix64(h ^ sigs[:, col].astype(np.uint64))
        out[:, b] = h
    return out


def band_group_pairs(ids: np.ndarray, band_digests: np.ndarray):
    """Candidate pairs (a < b) among records with equal digests of one LSH band: datasketch
    MinHashLSH's candidates from that band. A pair sharing several bands comes from each of
    them (`unique_pairs` makes them one): carrying every earlier band's digest with each band
    record, to keep a pair to its first shared band, cost 60 bytes a record; a near pair shares
    a few bands, and most records have no pair at all."""
    if len(ids) < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    order = np.argsort(band_digests, kind="stable")
    ids, digests = ids[order], band_digests[order]
    starts, ends = run_bounds(digests)
    out_a, out_b = [], []
    for s, e in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
        i, j = np.triu_indices(e - s, 1)
        out_a.append(ids[s + i])
        out_b.append(ids[s + j])
    if not out_a:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    a, b = np.concatenate(out_a), np.concatenate(out_b)
    return np.minimum(a, b), np.maximum(a, b)


def unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b) without repeats, sorted."""
    if len(a) == 0:
        return a, b
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    new = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
    return a[new], b[new]


def identical_groups(ids: np.ndarray, fields: Sequence[np.ndarray], eligible: Optional[np.ndarray] = None):
    """Rows whose `fields` are all equal (byte for byte), among the `eligible` ones: every such
    row is near every other, so the search needs one of them, and a star of edges from it keeps
    the graph's components. Returns (keep, member, representative): `keep` masks the rows to
    search (each group's smallest id, and all rows that are not eligible); `member` and
    `representative` are row positions, one pair per folded row.

    Why: a blank picture saved at many sizes, or a stock caption, gives thousands to millions of
    identical signatures in web-scale input; compared pairwise they make n^2 / 2 edges (5,000
    blank pictures among 100,000 took 15 minutes and 20 GiB: benchmarks/RESULTS.md)."""
    n = len(ids)
    eligible = np.ones(n, dtype=bool) if eligible is None else eligible
    rows = np.flatnonzero(eligible)
    if len(rows) > 1:  # first, cheaply: the rows whose first field (its first column) repeats
        first = fields[0][rows].reshape(len(rows), -1)[:, 0]
        order = np.argsort(first, kind="stable")
        repeat = first[order][1:] == first[order][:-1]
        rows = np.sort(rows[order[np.r_[repeat, False] | np.r_[False, repeat]]])
    none = np.zeros(0, dtype=np.int64)
    if len(rows) < 2:
        return np.ones(n, dtype=bool), none, none
    columns = [np.ascontiguousarray(f[rows]).view(np.uint8).reshape(len(rows), -1) for f in fields]
    matrix = np.ascontiguousarray(np.concatenate(columns, axis=1))
    keys = matrix.view(np.dtype((np.void, matrix.shape[1]))).ravel()
    _, group = np.unique(keys, return_inverse=True)
    order = np.lexsort((ids[rows], group.ravel()))  # by group, smallest id first
    rows, group = rows[order], group.ravel()[order]
    first = np.r_[True, group[1:] != group[:-1]]
    representative = rows[first][np.cumsum(first) - 1]
    keep = np.ones(n, dtype=bool)
    keep[rows[~first]] = False
    return keep, rows[~first], representative[~first]


def component_labels(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the edge list on one machine (scipy): (nodes, label) with
    label = the smallest node id of the node's component, the same fixpoint that min-label
    propagation reaches."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    if len(nodes) == 0:
        return nodes, nodes.copy()
    n = len(nodes)
    ia, ib = inverse[: len(a)], inverse[len(a) :]
    graph = coo_matrix((np.ones(len(ia), dtype=np.int8), (ia, ib)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    smallest = np.full(comp.max() + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, comp, nodes)
    return nodes, smallest[comp]
