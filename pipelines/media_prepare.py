"""Prepare for audio and video rows (prepare.PrepareShard dispatches here by modality).

Audio: one row, its re-encoded audio as KEY.<format>, `sha256` of the decoded PCM (so the
same sound in wav and flac is an exact duplicate); with a sidecar .srt/.vtt or spans a table
gives (input.clips_col), one row per clip, keyed AUDIOKEY_NNNN, each with its own text. Video: one row per planned clip, keyed
VIDEOKEY_NNNN: clips at the spans a table gives (input.clips_col), at subtitle cues (a
sidecar .srt/.vtt, else the container's subtitle stream), or, without either, the whole
video, fixed windows or its scenes (video.uncued) with its caption.
Each clip row carries KEY.mp4, KEY.jpg (the middle frame, video.keep_frame) and, in staging
only, KEY.frameN.jpg for the scorer. Near-dup signatures: the middle frame's (phash, dhash,
colour) and every sampled frame's (`frame_hashes`, `frame_colours`: a near-duplicate clip
matches at most positions).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from typing import Any, Optional

from mmcurate.filters.audio import AudioRejected
from mmcurate.filters.hashing import sha256_hex
from mmcurate.filters.near_dup import COLOUR_BYTES, frame_hashes
from mmcurate.filters.scenes import scene_cuts
from mmcurate.filters.subtitles import MAX_SKIPPED_SHOWN, Clip, SubtitleError, cues_outside, fixed_windows, given_clips, parse_subtitles, plan_clips, scene_clips
from mmcurate.filters.text import caption_sha256
from mmcurate.filters.video import VideoRejected, cut, probe
from mmcurate.pipelines import fileio
from mmcurate.pipelines.fetch import FetchFailed
from mmcurate.pipelines.sources.base import ext_of
from mmcurate.pipelines.tario import FRAME_PREFIX
from mmcurate.schemas.record import SourceRow, Verdict, apply_verdict, error_text


def _dumps(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True)


def audio_rows(ctx, src: SourceRow, row: dict, data: Any) -> list[tuple[dict, dict]]:
    try:
        data = ctx.media_bytes(src, data)
        with ctx.cpu_slots:
            result = ctx.process_audio(data)
    except (FetchFailed, AudioRejected) as e:
        return [(apply_verdict(row, e.verdict), {})]
    _audio_fields(row, result)
    row["media"] = _dumps(_audio_media(result) | ({"audio_gap": result.gap_s} if result.gap_s else {}))
    return [(row, {result.ext: result.data})]


def cut_audio_rows(ctx, src: SourceRow, row: dict, data: Any) -> list[tuple[dict, dict]]:
    """An audio file with a sidecar .srt/.vtt, or the spans a table gives (input.clips_col):
    decoded once and cut as a video is, at its cues (audio.merge_gap, min_clip, max_clip,
    padding) or at each span as given; one row a clip keyed KEY_NNNN with its own text (the
    file's .txt is not used: an ignored file). Malformed cues are left out and named. Table
    rows naming the same file share its decode (shared_media.py)."""
    cfg = ctx.cfg.audio
    skipped: list[str] = []
    if src.clips is not None and not src.clips:
        return [(apply_verdict(row, Verdict.reject("audio.no_cues", f"column {ctx.cfg.input.clips_col!r} holds no span")), {})]
    try:
        cues = None if src.clips is not None else _sidecar_cues(src, skipped)
    except SubtitleError as e:
        return [(apply_verdict(row, Verdict.reject("audio.bad_subtitles", f"{src.subtitles}: {e}")), {})]
    except OSError as e:
        return [(apply_verdict(row, Verdict.reject("input.unreadable", error_text(e, 300))), {})]
    if cues is not None and not cues:
        return [(apply_verdict(row, Verdict.reject("audio.no_cues", "the subtitles hold no cue")), {})]
    decoded = ctx.shared_media.get(src, lambda: _decode_file(ctx, src, data), (FetchFailed, AudioRejected))
    if isinstance(decoded, Verdict):
        return [(apply_verdict(row, decoded), {})]
    duration = decoded.duration_s
    if cues is None:
        clips = given_clips(src.clips, duration, cfg.min_clip)
    else:
        clips = plan_clips(cues, duration, merge_gap=cfg.merge_gap, min_clip=cfg.min_clip, max_clip=cfg.max_clip, padding=cfg.padding)
    if not clips:
        return [(apply_verdict(row, Verdict.reject("audio.no_cues", f"no cue inside the audio's {duration:.3f} s")), {})]
    notes = _cue_notes(skipped, cues_outside(cues, duration) if cues else 0)
    return [_audio_clip_row(ctx, src, row, decoded, i, clip, notes) for i, clip in enumerate(clips)]


def _decode_file(ctx, src: SourceRow, data: Any):
    """The whole file decoded and checked (FetchFailed, AudioRejected)."""
    data = ctx.media_bytes(src, data)
    with ctx.cpu_slots:
        return ctx.process_audio.decode(data, max_duration=ctx.cfg.audio.max_source_duration)


def _audio_clip_row(ctx, src: SourceRow, file_row: dict, decoded, index: int, clip: Clip, notes: dict) -> tuple[dict, dict]:
    row, refused = _planned_clip(ctx, src, file_row, index, clip, notes, "audio", decoded.duration_s, cued=True)
    if refused is not None:
        return apply_verdict(row, refused), {}
    try:
        with ctx.cpu_slots:
            result = ctx.process_audio.segment(decoded, clip.start, clip.end)
    except AudioRejected as e:
        return apply_verdict(row, e.verdict), {}
    _audio_fields(row, result)
    source = {"source_duration": round(decoded.duration_s, 6)} | ({"source_audio_gap": result.gap_s} if result.gap_s else {})
    row["media"] = _dumps(_audio_media(result) | _span(clip, index) | source | notes)
    return row, {result.ext: result.data}


def _audio_fields(row: dict, result) -> None:
    row.update(sha256=result.pcm_sha256, duration_s=result.duration_s)
    if result.hashes:
        row.update(result.hashes)


def _audio_media(result) -> dict:
    return {
        "duration": round(result.duration_s, 6), "sample_rate": result.sample_rate, "channels": result.channels,
        "original_sample_rate": result.original_sample_rate, "original_channels": result.original_channels,
        "original_codec": result.original_codec, "original_bit_rate": result.original_bit_rate,
        "format": result.ext, "sha256_of": "pcm_s16le",
    }


def _cue_caption(ctx, row: dict, text) -> Optional[Verdict]:
    """A clip's text from its cues, cleaned, on its row; the verdict that drops the clip when
    the text is refused and text is required (or there was text to refuse), else None."""
    cleaned = ctx.clean_caption(text)
    row.update(caption=cleaned.text, captions=[cleaned.text] if cleaned.verdict.kept else [], caption_sha256="", **cleaned.fields())
    if not cleaned.verdict.kept and (ctx.cfg.input.requires_text or (text or "").strip()):
        return cleaned.verdict
    if cleaned.verdict.kept:
        row["caption_sha256"] = caption_sha256(cleaned.text)
    return None


def video_rows(ctx, src: SourceRow, row: dict, data: Any, caption_verdict: Verdict) -> list[tuple[dict, dict]]:
    try:
        with _video_source(ctx, src, data) as media:
            return _clip_rows(ctx, src, row, media, caption_verdict)
    except FetchFailed as e:
        return [(apply_verdict(row, e.verdict), {})]


def _clip_rows(ctx, src: SourceRow, row: dict, media, caption_verdict: Verdict) -> list[tuple[dict, dict]]:
    cfg = ctx.cfg.video
    try:
        info = probe(media, cfg, subtitles=src.clips is None and not src.subtitles)  # (a sidecar or given spans cut it)
        skipped = list(info.skipped_cues)  # malformed cues left out (a sidecar's are added as it is parsed)
        cues = None if src.clips is not None else _sidecar_cues(src, skipped) if src.subtitles else info.cues
    except VideoRejected as e:
        return [(apply_verdict(row, e.verdict), {})]
    except SubtitleError as e:
        return [(apply_verdict(row, Verdict.reject("video.bad_subtitles", f"{src.subtitles or 'subtitle stream'}: {e}")), {})]
    except OSError as e:  # the sidecar cannot be read (a dangling link, an I/O error)
        return [(apply_verdict(row, Verdict.reject("input.unreadable", error_text(e, 300))), {})]
    if src.clips is not None:  # the spans a table gives, each with its caption
        if not src.clips:
            return [(apply_verdict(row, Verdict.reject("video.no_cues", f"column {ctx.cfg.input.clips_col!r} holds no span")), {})]
        clips = given_clips(src.clips, info.duration, cfg.min_clip)
    elif cues is not None:  # cut at the cues; each clip's text is its cues' text
        if not cues:
            return [(apply_verdict(row, Verdict.reject("video.no_cues", "the subtitles hold no cue")), {})]
        clips = plan_clips(cues, info.duration, merge_gap=cfg.merge_gap, min_clip=cfg.min_clip, max_clip=cfg.max_clip, padding=cfg.padding)
        if not clips:
            return [(apply_verdict(row, Verdict.reject("video.no_cues", f"no cue inside the video's {info.duration:.3f} s")), {})]
    else:
        if not caption_verdict.kept:
            return [(apply_verdict(row, caption_verdict), {})]
        try:
            with ctx.cpu_slots:  # (finding scene cuts decodes the whole video)
                clips = _uncued_clips(media, info, cfg)
        except VideoRejected as e:
            return [(apply_verdict(row, e.verdict), {})]
    cued = cues is not None or src.clips is not None
    notes = _cue_notes(skipped, cues_outside(cues, info.duration) if cues else 0)
    return [_clip_row(ctx, src, row, media, info, i, clip, cued, notes) for i, clip in enumerate(clips)]


def _cue_notes(skipped: list[str], outside: int) -> dict:
    """What every clip's json says of the cues its file lost: malformed ones left out (the
    first errors named), and ones wholly past the file's end."""
    notes = {"skipped_cues": len(skipped), "subtitle_errors": skipped[:MAX_SKIPPED_SHOWN]} if skipped else {}
    return notes | ({"cues_outside": outside} if outside else {})


def _uncued_clips(media, info, cfg) -> list[Clip]:
    if cfg.uncued == "whole":
        return [Clip(0.0, info.duration, "")]
    if cfg.uncued == "scenes":
        return scene_clips(scene_cuts(media, info, cfg.scene_threshold, cfg.min_clip), info.duration, cfg.min_clip, cfg.max_clip)
    return fixed_windows(info.duration, cfg.window, cfg.min_clip)


@contextlib.contextmanager
def _video_source(ctx, src: SourceRow, data: Any):
    """What PyAV opens: a local file in place (any size, seekable); bytes already read from a
    tar as they are; a remote video streamed to a temporary file (video.spool_dir, at most
    video.max_bytes), deleted when its clips are done (FetchFailed on the way); table rows
    naming the same remote video share one download (shared_media.py)."""
    if data is not None:
        yield ctx.media_bytes(src, data)
    elif src.media and not fileio.is_remote(src.media):
        if not fileio.exists(src.media):
            raise FetchFailed("fetch.not_found", src.media)
        yield src.media
    else:
        spooled = ctx.shared_media.get(src, lambda: _spool(ctx, src), (FetchFailed,))
        if isinstance(spooled, Verdict):
            raise FetchFailed(spooled.reason, spooled.detail)
        try:
            yield spooled
        finally:
            if not ctx.shared_media.shared(src):  # else its file's last row deletes it
                remove_spooled(spooled)


def _spool(ctx, src: SourceRow) -> str:
    """A remote video downloaded to a temporary file in video.spool_dir (at most
    video.max_bytes, else FetchFailed): its path."""
    cfg = ctx.cfg.video
    if cfg.spool_dir:  # created on first use, as on a fresh worker (run() checks it on local runs)
        os.makedirs(cfg.spool_dir, exist_ok=True)
    f = tempfile.NamedTemporaryFile(dir=cfg.spool_dir or None, prefix="mmcurate-video-", delete=False)
    try:
        with f:
            ctx.fetcher.fetch(src.media, sink=f, max_bytes=cfg.max_bytes)
    except BaseException:
        remove_spooled(f.name)
        raise
    return f.name


def remove_spooled(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _sidecar_cues(src: SourceRow, skipped: list[str]):
    return parse_subtitles(fileio.read_bytes(src.subtitles), ext_of(src.subtitles), skipped)


def _clip_hashes(jpegs: list[bytes], mirror: bool) -> dict:
    """The middle frame's pHash/dHash and colour (for pairs the frames cannot decide) and every frame's."""
    from PIL import Image

    frames = [Image.open(io.BytesIO(jpeg)) for jpeg in jpegs]
    out = frame_hashes(frames, mirror)
    middle = len(jpegs) // 2
    out["colour"] = out["frame_colours"][middle * COLOUR_BYTES : (middle + 1) * COLOUR_BYTES] or None
    for name, flat in (("", out["frame_hashes"]), ("_mirror", out["frame_hashes_mirror"])):
        out["phash" + name], out["dhash" + name] = flat[2 * middle : 2 * middle + 2] if flat else (None, None)
    return out


def _planned_clip(ctx, src, file_row: dict, index: int, clip: Clip, notes: dict, modality: str, duration: float,
                  cued: bool) -> tuple[dict, Optional[Verdict]]:
    """A planned clip of a video or audio file: its row (key FILEKEY_NNNN, its span in `media`,
    with its own text when cut at cues or given spans) and the verdict that drops it before any
    cutting (its text refused, a span wholly outside the file, shorter than MODALITY.min_clip),
    else None. `notes`: the cues the file lost (named in every clip's json)."""
    row = dict(file_row, key=f"{src.key}_{index:04d}")
    row["media"] = _dumps(_span(clip, index) | notes)
    if cued:
        refused = _cue_caption(ctx, row, clip.text)
        if refused is not None:
            return row, refused
    if clip.outside:
        return row, Verdict.reject(f"{modality}.clip_outside", f"{clip.start:.3f}-{clip.end:.3f} s; the {modality} lasts {duration:.3f} s")
    if clip.too_short:
        min_clip = getattr(ctx.cfg, modality).min_clip
        return row, Verdict.reject(f"{modality}.clip_too_short", f"{clip.end - clip.start:.3f} s < {min_clip:g} s")
    return row, None


def _span(clip: Clip, index: int) -> dict:
    return {"start": round(clip.start, 6), "end": round(clip.end, 6), "clip": index}


def _clip_row(ctx, src, video_row: dict, media, info, index: int, clip: Clip, cued: bool, notes: dict) -> tuple[dict, dict]:
    """One clip: its own text when cut at cues or given spans (else the video's caption), cut and
    framed."""
    row, refused = _planned_clip(ctx, src, video_row, index, clip, notes, "video", info.duration, cued)
    if refused is not None:
        return apply_verdict(row, refused), {}
    try:
        with ctx.cpu_slots:
            result = cut(media, info, clip.start, clip.end, ctx.cfg.video)
    except VideoRejected as e:
        return apply_verdict(row, e.verdict), {}
    row.update(
        sha256=sha256_hex(result.data), duration_s=result.duration, width=result.width, height=result.height,
        original_width=info.width, original_height=info.height,
    )
    row["media"] = _dumps({
        "start": round(result.start, 6), "end": round(result.end, 6), "duration": round(result.duration, 6), "clip": index,
        "fps": round(result.fps, 6), "frames": result.frames, "size": [result.width, result.height], "codec": result.codec,
        "cut": result.method, "source_duration": round(info.duration, 6), "has_audio": info.has_audio,
    } | ({"audio_gap": result.audio_gap} if result.audio_gap else {}) | ({"source_rotation": info.rotation} if info.rotation else {}) | notes)
    members = {f"{FRAME_PREFIX}{i}.jpg": jpeg for i, jpeg in enumerate(result.frame_jpegs)}
    middle = result.frame_jpegs[len(result.frame_jpegs) // 2] if result.frame_jpegs else None
    if middle is not None and ctx.cfg.video.keep_frame:
        members["jpg"] = middle
    if middle is not None and ctx.cfg.dedup.mode == "near":
        row.update(_clip_hashes(result.frame_jpegs, ctx.cfg.dedup.mirror))
    members["mp4"] = result.data
    return row, members
