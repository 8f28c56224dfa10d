"""Scene cuts (video.uncued=scenes): OpenCV's HSV, ContentDetector's score, cuts found at the
exact frames of a generated video, and scenes planned into clips."""

import numpy as np
import pytest

from mmcurate.filters.scenes import content_score, hsv, scene_cuts
from mmcurate.filters.subtitles import Clip, scene_clips
from mmcurate.filters.video import probe
from mmcurate.schemas.config import VideoConfig
from tests.video_media import encode_frames

FPS = 25


def test_hsv_is_opencvs_to_the_byte():
    cv2 = pytest.importorskip("cv2")  # (installed with img2dataset, the dev extra)
    rng = np.random.default_rng(0)
    cube = np.stack(np.meshgrid(*(np.arange(0, 256, 3),) * 3, indexing="ij"), axis=-1).reshape(-1, 1, 3).astype(np.uint8)
    for rgb in (rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), cube):
        assert np.array_equal(hsv(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV))


def test_content_score_is_the_mean_hsv_change():
    red, blue = np.full((4, 4, 3), (255, 0, 0), np.uint8), np.full((4, 4, 3), (0, 0, 255), np.uint8)
    assert hsv(red)[0, 0].tolist() == [0, 255, 255] and hsv(blue)[0, 0].tolist() == [120, 255, 255]
    assert content_score(hsv(red), hsv(blue)) == 40.0  # (120 + 0 + 0) / 3
    assert content_score(hsv(red), hsv(red)) == 0.0


def scene(seed: int, frames: int, drift: int = 0) -> list[np.ndarray]:
    """A textured picture of its own colours, panning `drift` px a frame and slowly brightening."""
    rng = np.random.default_rng(seed)
    base = np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((10, 10, 1))).astype(np.int16)
    return [np.clip(np.roll(base, i * drift, axis=1) + i // 4, 0, 255).astype(np.uint8) for i in range(frames)]


@pytest.fixture(scope="module")
def three_scenes(tmp_path_factory):
    """150 frames: scenes start at frames 0, 50 and 88; within each, a slow pan and fade."""
    path = tmp_path_factory.mktemp("scenes") / "three.mp4"
    encode_frames(path, scene(1, 50, drift=1) + scene(2, 38, drift=2) + scene(3, 62), FPS, crf=18)
    return str(path)


def test_cuts_are_found_at_their_frames(three_scenes):
    info = probe(three_scenes, VideoConfig())
    assert scene_cuts(three_scenes, info, threshold=27.0, min_scene=1.0) == [50 / FPS, 88 / FPS]
    # a scene must last min_scene: the cut 1.52 s after the first is not taken at 2 s
    assert scene_cuts(three_scenes, info, threshold=27.0, min_scene=2.0) == [50 / FPS]
    assert scene_cuts(three_scenes, info, threshold=200.0, min_scene=1.0) == []


def test_a_flash_is_not_a_cut(tmp_path):
    """A white frame (a camera flash) 1.6 s into a scene: the picture before it comes back."""
    frames = scene(1, 40, drift=1) + [np.full((120, 160, 3), 255, np.uint8)] + scene(1, 60, drift=1)[41:] + scene(2, 30)
    path = tmp_path / "flash.mp4"
    encode_frames(path, frames, FPS, crf=18)
    info = probe(str(path), VideoConfig())
    assert scene_cuts(str(path), info, threshold=27.0, min_scene=1.0) == [60 / FPS]


def test_scenes_become_clips():
    assert scene_clips([2.0, 3.5], 6.0, min_clip=1.0, max_clip=30.0) == [Clip(0.0, 2.0, ""), Clip(2.0, 3.5, ""), Clip(3.5, 6.0, "")]
    # too long: equal parts no longer than max_clip; too short: marked (and dropped, counted)
    assert scene_clips([0.5, 5.0], 10.0, min_clip=1.0, max_clip=3.0) == [
        Clip(0.0, 0.5, "", too_short=True), Clip(0.5, 2.75, ""), Clip(2.75, 5.0, ""),
        Clip(5.0, 7.5, ""), Clip(7.5, 10.0, ""),
    ]
    assert scene_clips([], 4.0, min_clip=1.0, max_clip=30.0) == [Clip(0.0, 4.0, "")]
    assert scene_clips([0.0, 4.0, 9.0], 4.0, min_clip=1.0, max_clip=30.0) == [Clip(0.0, 4.0, "")]  # cuts outside (0, duration)
