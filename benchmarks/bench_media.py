"""Audio files per second and video seconds per wall second, filters alone and end to end.

    python benchmarks/bench_media.py --workdir benchmarks/_work/media
    python benchmarks/bench_media.py --audio 400 --videos 16 --video-seconds 30 --recordings 4 --recording-minutes 10

Generates (once, kept in --workdir) AUDIO 6-s 44.1 kHz stereo wav files with sidecar texts,
and VIDEOS h264+aac mp4s of VIDEO_SECONDS at 640x360, 25 fps, a keyframe every 2 s, each with
an .srt whose 2.6-s cues start every 4 s off the keyframes (so every clip is re-encoded: the
costly path). Then measures, in one process: `ProcessAudio` (decode, resample to 16 kHz mono,
FLAC) per file; the same decode once per RECORDINGS speech-like (tests/audio_media.babble) 44.1 kHz
stereo wav files of RECORDING_MINUTES with an .srt like the videos', then encoded a clip per cue
(end to end also as a GigaSpeech-style table of the same segments, one row each, and that
table with its rows shuffled, 50 rows a shard);
and `probe` + `cut` per cue, at the source size, scaled to 240 px
(video.max_height) and at 8 frames a second (video.fps); and (unless --filters-only), end to end, `mmcurate run --workers 2` on
the audio folder, on the subtitled recordings, on the cued videos, and on the same videos kept whole (stream copy). The
generated videos share their content, so the video runs use `--dedup none` (dedup comes after
the costly prepare; with it on, identical clips would be dropped, not skipped).
Also the real clips in ../shared/data/video when present.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests import audio_media, video_media  # noqa: E402  (the test generators: deterministic media)


def srt(seconds: float) -> str:
    blocks, n, t = [], 1, 0.7
    while t + 2.6 <= seconds:
        blocks.append(f"{n}\n{_ts(t)} --> {_ts(t + 2.6)}\ncue number {n} of the talk\n")
        n, t = n + 1, t + 4.0
    return "\n".join(blocks)


def _ts(t: float) -> str:
    ms = round(t * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def generate_recordings(work: str, n: int, minutes: float) -> str:
    """Speech-like recordings with subtitles: long-form audio cut at its cues."""
    import numpy as np

    folder = os.path.join(work, f"recordings_{minutes:g}min")
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        path = os.path.join(folder, f"r{i:03d}.wav")
        if not os.path.exists(path):
            mono = audio_media.babble(i, minutes * 60, 44100)
            with open(path, "wb") as f:
                f.write(audio_media.encode(np.repeat(mono, 2, axis=1), 44100, "wav"))
            with open(path[:-3] + "srt", "w") as f:
                f.write(srt(minutes * 60))
    return folder


def generate_segments_table(recordings_dir: str, seconds: float, shuffled: bool = False) -> str:
    """The recordings as a GigaSpeech-style table: one row a segment (the clips their cues
    plan), so it cuts the same clips as the subtitled run, read from --clips-col START,END.
    shuffled: the rows in a fixed random order (a table shuffled for training), so that the
    recordings' rows interleave."""
    from mmcurate.filters.subtitles import parse_subtitles, plan_clips
    from mmcurate.schemas.config import AudioConfig

    cfg, lines = AudioConfig(), ["audio\tbegin_time\tend_time\ttext"]
    for name in sorted(p for p in os.listdir(recordings_dir) if p.endswith(".wav")):
        path = os.path.join(recordings_dir, name)
        cues = parse_subtitles(open(path[:-3] + "srt", "rb").read(), "srt")
        for c in plan_clips(cues, seconds, merge_gap=cfg.merge_gap, min_clip=cfg.min_clip, max_clip=cfg.max_clip, padding=cfg.padding):
            lines.append(f"{path}\t{c.start:.3f}\t{c.end:.3f}\t{' '.join(c.text.split())}")
    if shuffled:
        import random

        random.Random(0).shuffle(rows := lines[1:])
        lines = lines[:1] + rows
    suffix = "_segments_shuffled.tsv" if shuffled else "_segments.tsv"
    table = os.path.join(os.path.dirname(recordings_dir), os.path.basename(recordings_dir) + suffix)
    with open(table, "w") as f:
        f.write("\n".join(lines) + "\n")
    return table


def generate(work: str, n_audio: int, n_videos: int, video_seconds: float) -> tuple[str, str]:
    audio_dir, video_dir = os.path.join(work, "audio"), os.path.join(work, "video")
    os.makedirs(audio_dir, exist_ok=True)
    os.makedirs(video_dir, exist_ok=True)
    for i in range(n_audio):
        path = os.path.join(audio_dir, f"a{i:05d}.wav")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(audio_media.tone(6.0, 44100, 2, freq=200.0 + i))
            with open(path[:-3] + "txt", "w") as f:
                f.write(f"utterance number {i} of the benchmark")
    for i in range(n_videos):
        path = os.path.join(video_dir, f"v{i:03d}.mp4")
        if not os.path.exists(path):
            video_media.make_video(path, seconds=video_seconds, size=(640, 360), gop=50)
            with open(path[:-3] + "srt", "w") as f:
                f.write(srt(video_seconds))
    return audio_dir, video_dir


def filters_alone(audio_dir: str, video_dir: str, recordings_dir: str) -> dict:
    from mmcurate.filters.audio import ProcessAudio
    from mmcurate.filters.subtitles import parse_subtitles, plan_clips
    from mmcurate.filters.video import cut, probe
    from mmcurate.schemas.config import AudioConfig, VideoConfig

    process = ProcessAudio(AudioConfig())
    wavs = sorted(p for p in os.listdir(audio_dir) if p.endswith(".wav"))
    started = time.perf_counter()
    audio_s = sum(process(open(os.path.join(audio_dir, w), "rb").read()).duration_s for w in wavs)
    audio_wall = time.perf_counter() - started

    started, source_s, clip_s, clips = time.perf_counter(), 0.0, 0.0, 0
    cfg = AudioConfig()
    for name in sorted(p for p in os.listdir(recordings_dir) if p.endswith(".wav")):
        path = os.path.join(recordings_dir, name)
        decoded = process.decode(open(path, "rb").read())
        cues = parse_subtitles(open(path[:-3] + "srt", "rb").read(), "srt")
        for c in plan_clips(cues, decoded.duration_s, merge_gap=cfg.merge_gap, min_clip=cfg.min_clip, max_clip=cfg.max_clip, padding=cfg.padding):
            clip_s += process.segment(decoded, c.start, c.end).duration_s
            clips += 1
        source_s += decoded.duration_s
    cued_wall = time.perf_counter() - started

    videos = sorted(os.path.join(video_dir, p) for p in os.listdir(video_dir) if p.endswith(".mp4"))
    result = {"audio_files": len(wavs), "audio_files_per_s": round(len(wavs) / audio_wall, 1),
              "audio_seconds_per_s": round(audio_s / audio_wall, 1),
              "recordings_source_s": round(source_s, 1), "recording_clips": clips, "recording_clip_s": round(clip_s, 1),
              "recording_source_s_per_s": round(source_s / cued_wall, 1), "recording_clips_per_s": round(clips / cued_wall, 1)}
    for name, cfg in (("", VideoConfig()), ("scaled_240_", VideoConfig(max_height=240)), ("fps_8_", VideoConfig(fps=8))):
        started, source_s, clip_s, clips = time.perf_counter(), 0.0, 0.0, 0
        for path in videos:
            info = probe(path, cfg)
            cues = parse_subtitles(open(path[:-3] + "srt", "rb").read(), "srt")
            for c in plan_clips(cues, info.duration, merge_gap=cfg.merge_gap, min_clip=cfg.min_clip, max_clip=cfg.max_clip, padding=cfg.padding):
                clip_s += cut(path, info, c.start, c.end, cfg).duration
                clips += 1
            source_s += info.duration
        video_wall = time.perf_counter() - started
        result.update({f"{name}video_source_s": round(source_s, 1), f"{name}clips": clips, f"{name}clip_s": round(clip_s, 1),
                       f"{name}video_source_s_per_s": round(source_s / video_wall, 2), f"{name}clip_s_per_s": round(clip_s / video_wall, 2)})
    return result


def end_to_end(name: str, inputs: list[str], out: str, *flags: str) -> dict:
    cmd = [sys.executable, "-m", "mmcurate", "run", *inputs, "-o", out, "--workers", "2", "--no-progress", *flags]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    with open(os.path.join(out, "stats.json")) as f:
        stats = json.load(f)
    durations = stats["distributions"].get("duration_s", {})
    stored_s = durations.get("sum", 0.0)
    return {"run": name, "inputs": stats["inputs"], "kept": stats["kept"], "wall_s": round(wall, 1),
            "rows_per_s": round(stats["inputs"] / wall, 1), "stored_media_s": round(stored_s, 1),
            "stored_media_s_per_s": round(stored_s / wall, 2), "command": " ".join(cmd[1:])}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=os.path.join(REPO, "benchmarks", "_work", "media"))
    ap.add_argument("--audio", type=int, default=400, help="audio files (default 400)")
    ap.add_argument("--videos", type=int, default=16, help="videos (default 16)")
    ap.add_argument("--video-seconds", type=float, default=30.0, help="seconds per video (default 30)")
    ap.add_argument("--recordings", type=int, default=4, help="long subtitled audio recordings (default 4)")
    ap.add_argument("--recording-minutes", type=float, default=10.0, help="minutes per recording (default 10)")
    ap.add_argument("--filters-only", action="store_true", help="only the filters in one process, no end-to-end runs")
    args = ap.parse_args(argv)
    args.workdir = os.path.abspath(args.workdir)
    audio_dir, video_dir = generate(args.workdir, args.audio, args.videos, args.video_seconds)
    recordings_dir = generate_recordings(args.workdir, args.recordings, args.recording_minutes)
    results = {"filters_one_process": filters_alone(audio_dir, video_dir, recordings_dir), "end_to_end": []}
    if args.filters_only:
        print(json.dumps(results, indent=2))
        return
    outs = os.path.join(args.workdir, "out")
    e2e = results["end_to_end"]
    e2e.append(end_to_end("audio folder -> 16 kHz mono FLAC", [audio_dir], os.path.join(outs, "audio"), "--format", "audio"))
    e2e.append(end_to_end("subtitled recordings cut at cues -> FLAC clips", [recordings_dir], os.path.join(outs, "recordings"), "--format", "audio"))
    e2e.append(end_to_end("the same recordings as a segments table, a row a clip -> FLAC clips", [generate_segments_table(recordings_dir, args.recording_minutes * 60)],
                          os.path.join(outs, "segments"), "--audio-col", "audio", "--clips-col", "begin_time,end_time", "--caption-col", "text"))
    # shuffled, at 50 rows a shard: as a table far larger than a shard (10,000 rows), whose
    # files' rows are spread over many shards' worth of rows
    e2e.append(end_to_end("the same segments table, its rows shuffled, 50 rows a shard", [generate_segments_table(recordings_dir, args.recording_minutes * 60, shuffled=True)],
                          os.path.join(outs, "segments_shuffled"), "--audio-col", "audio", "--clips-col", "begin_time,end_time", "--caption-col", "text",
                          "--set", "output.shard_size=50"))
    e2e.append(end_to_end("videos cut at cues (re-encode)", [video_dir], os.path.join(outs, "cued"), "--format", "video", "--dedup", "none"))
    whole_dir = os.path.join(args.workdir, "video_whole")  # the same videos without their .srt
    os.makedirs(whole_dir, exist_ok=True)
    for name in os.listdir(video_dir):
        if name.endswith(".mp4") and not os.path.exists(os.path.join(whole_dir, name)):
            os.symlink(os.path.join(video_dir, name), os.path.join(whole_dir, name))
    e2e.append(end_to_end("videos kept whole (stream copy)", [whole_dir], os.path.join(outs, "whole"), "--format", "video",
                          "--require", "video", "--dedup", "none"))
    shared = os.path.join(REPO, "..", "shared", "data", "video")
    if os.path.isdir(shared):
        e2e.append(end_to_end("real MSR-VTT/MSVD clips, whole", [shared], os.path.join(outs, "real"), "--format", "video", "--require", "video"))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
