"""Video clip signatures (filters/near_dup.frame_hashes, majority_distance): a clip is a
near-duplicate of another when most of its sampled frames are, position by position; the
middle frame alone neither suffices nor is required."""

import numpy as np
import pytest
from PIL import Image

from mmcurate.filters.near_dup import (
    LeaderIndex, Nearness, frame_hashes, frame_matrix, frames_comparable, greedy_leaders, image_hashes, majority_distance,
)

A, B, C = 0x9F3A5C7E12B4D680, 0x0123456789ABCDEF, 0xF0F0F0F00F0F0F0F  # pairwise > 20 bits apart


def flip(h: int, bits: int) -> int:
    return h ^ ((1 << bits) - 1)  # the lowest `bits` bits flipped


def clip(*frames: int, dhash_off: int = 0) -> list[int]:
    """A flat frame hash list: pHash per frame as given, dHash the same with bits flipped."""
    return [h for f in frames for h in (f, flip(f, dhash_off))]


def near(a, b, image_hash="either", k=8):
    """True/False when the frames decide; None when they leave it to the middle frame."""
    fa, na = frame_matrix([a])
    fb, nb = frame_matrix([b])
    if not frames_comparable(na, nb)[0]:
        return None
    return bool(majority_distance(fa, na, fb, nb, image_hash)[0] <= k)


def test_most_frame_positions_must_match():
    assert near(clip(A, B, C), clip(flip(A, 8), B, flip(C, 3)))  # all three within k
    assert near(clip(A, B, C), clip(flip(A, 20), B, C))  # two of three: a copy a few frames off in fast motion
    assert near(clip(A, B, C), clip(A, flip(B, 20), C))  # ... the middle one included
    assert not near(clip(A, B, C), clip(flip(A, 20), B, flip(C, 20)))  # the middle frame alone (a shared black frame)
    assert not near(clip(A, B, C), clip(B, A, C))  # the same frames in another order: two positions differ
    assert not near(clip(A, B), clip(A, flip(B, 9)))  # two frames: both must match
    assert not near(clip(A, B, C, A), clip(A, B, flip(C, 20), flip(A, 20)))  # four: three must (2 is no majority)
    assert near(clip(A, B, C, A), clip(A, B, C, flip(A, 20)))


def test_single_frames_and_unequal_counts_leave_it_to_the_middle_frame():
    assert near(clip(A), clip(A)) is None  # one frame each (video.frames=1)
    assert near(clip(A, B, C), clip(A, B, C, A, B)) is None  # 3 vs 5 frames: positions do not line up
    assert near(None, clip(A, B, C)) is None and near(None, None) is None  # an image, or a clip staged without frame hashes


def test_the_distance_most_frames_are_within():
    fa, na = frame_matrix([clip(A, B, C)] * 3 + [clip(A, B, C, A)])
    fb, nb = frame_matrix([clip(flip(A, 2), flip(B, 9), flip(C, 5)), clip(flip(A, 30), B, flip(C, 20)), clip(A, B, C), clip(flip(A, 1), flip(B, 2), flip(C, 3), flip(A, 4))])
    assert majority_distance(fa, na, fb, nb, "phash").tolist() == [5, 20, 0, 3]  # 2nd of 3, 3rd of 4


@pytest.mark.parametrize("image_hash, expected", [("phash", True), ("dhash", False), ("both", False), ("either", True)])
def test_each_frame_is_compared_under_image_hash(image_hash, expected):
    """pHashes equal, dHashes 12 bits apart at every position."""
    a = clip(A, B, C)
    b = [h if i % 2 == 0 else flip(h, 12) for i, h in enumerate(a)]
    assert near(a, b, image_hash) is expected


def test_padding_of_shorter_rows_never_counts_as_a_match():
    """Rows of different widths in one batch: a 3-frame pair with one match must not pass
    because a 5-frame row widened the arrays with zeros."""
    fa, na = frame_matrix([clip(A, B, C), clip(A, B, C, A, B)])
    fb, nb = frame_matrix([clip(flip(A, 20), B, flip(C, 20)), clip(A, B, C, A, B)])
    assert fa.shape == (2, 5, 2) and na.tolist() == [3, 5]
    assert (majority_distance(fa, na, fb, nb, "either") <= 8).tolist() == [False, True]


def test_frame_hashes_are_each_frames_image_hashes_in_order():
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)) for _ in range(3)]
    got = frame_hashes(images, mirror=True)
    singles = [image_hashes(img, mirror=True) for img in images]
    assert got["frame_hashes"] == [h for s in singles for h in (s["phash"], s["dhash"])]
    assert got["frame_hashes_mirror"] == [h for s in singles for h in (s["phash_mirror"], s["dhash_mirror"])]
    assert frame_hashes(images)["frame_hashes_mirror"] is None


def test_leader_clustering_applies_the_frames_too():
    """Three clips share their middle frame; only the one whose outer frames match the
    leader's joins it. A clip whose middle frame differs but whose outer ones match joins too
    (the index finds it through its outer frames). A mirrored copy joins through its mirror frames."""
    def member(frames, mirrored=None):
        flat = clip(*frames)
        m = {"phash": flat[2], "dhash": flat[3], "phash_mirror": None, "dhash_mirror": None, "minhash": None,
             "frame_hashes": flat, "frame_hashes_mirror": None}
        if mirrored:
            mflat = clip(*mirrored)
            m.update(phash_mirror=mflat[2], dhash_mirror=mflat[3], frame_hashes_mirror=mflat)
        return m

    ms = [member((A, B, C)), member((C, B, A)), member((flip(A, 3), B, flip(C, 20))), member((A, flip(B, 30), C)),
          member((B, A, B), mirrored=(A, B, C))]
    plain = Nearness(ms[:4], "image", "either", 8, False, 0.8, 128)
    assert greedy_leaders(4, plain).tolist() == [0, 1, 0, 0]
    assert greedy_leaders(4, plain, LeaderIndex(plain, 0.8, 128)).tolist() == [0, 1, 0, 0]
    mirror = Nearness(ms, "image", "either", 8, True, 0.8, 128)
    assert greedy_leaders(5, mirror, LeaderIndex(mirror, 0.8, 128)).tolist() == [0, 1, 0, 0, 0]


def _colours(*cells_per_frame: int) -> bytes:
    """Frame colour signatures: each frame flat (its 4 cells alike) at lightness 50, with a
    given a* (b* = 0); a* values 40 apart are far beyond the default threshold 15."""
    return bytes(v for a in cells_per_frame for _ in range(4) for v in (round(50 * 2.55), 128 + a, 128))


def test_frames_must_also_match_in_colour_at_most_positions():
    """Three frames with equal hashes: colours far apart at one position leave a majority that
    matches; at two positions the clips are not near. A clip without frame colours (staged
    before them) is compared by its hashes alone; threshold 0 turns the colours off."""
    from mmcurate.filters.near_dup import frame_colour_matrix

    fa, na = frame_matrix([clip(A, B, C)] * 4)
    fb, nb = frame_matrix([clip(A, B, C)] * 4)
    ca, ha = frame_colour_matrix([_colours(0, 0, 0)] * 4, 3)
    cb, hb = frame_colour_matrix([_colours(0, 40, 0), _colours(40, 0, 40), _colours(5, 5, 5), None], 3)
    assert hb.tolist() == [True, True, True, False]
    assert majority_distance(fa, na, fb, nb, "either", (ca, ha, cb, hb), 15.0).tolist() == [0, 65, 0, 0]
    assert majority_distance(fa, na, fb, nb, "either", (ca, ha, cb, hb), 0.0).tolist() == [0, 0, 0, 0]
    assert majority_distance(fa, na, fb, nb, "either").tolist() == [0, 0, 0, 0]


def test_frame_colours_are_each_frames_colour_signature_and_leader_clustering_uses_them():
    from mmcurate.filters.near_dup import colour_signature

    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)) for _ in range(3)]
    assert frame_hashes(images)["frame_colours"] == b"".join(colour_signature(img) for img in images)

    def member(colours):
        flat = clip(A, B, C)
        return {"phash": flat[2], "dhash": flat[3], "phash_mirror": None, "dhash_mirror": None, "minhash": None,
                "frame_hashes": flat, "frame_hashes_mirror": None, "frame_colours": colours}

    ms = [member(_colours(0, 0, 0)), member(_colours(40, 40, 0)), member(_colours(0, 40, 0)), member(None)]
    near = Nearness(ms, "image", "either", 8, False, 0.8, 128, max_colour_distance=15.0)
    assert greedy_leaders(4, near, LeaderIndex(near, 0.8, 128)).tolist() == [0, 1, 0, 0]
    colour_blind = Nearness(ms, "image", "either", 8, False, 0.8, 128)
    assert greedy_leaders(4, colour_blind, LeaderIndex(colour_blind, 0.8, 128)).tolist() == [0, 0, 0, 0]
