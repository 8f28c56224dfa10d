"""`audio` and `video`: folders of media files with their texts.

A media file's text comes from a sidecar with its stem (`a.txt`, `a.json` with `caption`;
or `a.srt` / `a.vtt` subtitles: the file is cut at their cues in prepare) or from a
transcripts file anywhere in the folder (Sphinx `transcription`, LibriSpeech `*.trans.txt`,
captions.jsonl/csv/tsv, MSR-VTT json: see transcripts.py), matched by file stem. Texts
listed for a stem with no media file, and sidecars (.txt/.srt/.vtt; a lone .json is read as a
captions file) with no media file of their stem, are `align.missing_<modality>` rows: nothing
is lost.
"""

from __future__ import annotations

import re
from typing import Iterator, Sequence

from mmcurate.filters.keys import make_key, stem_of
from mmcurate.pipelines import fileio
from mmcurate.pipelines.sources import transcripts
from mmcurate.pipelines.sources.folder import read_sidecar
from mmcurate.pipelines.sources.base import ReadTask, as_checked_text, ext_of
from mmcurate.schemas.record import SourceRow, Verdict

MEDIA_EXTS = {
    "audio": ("wav", "flac", "mp3", "ogg", "opus", "m4a", "aac"),
    "video": ("mp4", "webm", "avi", "mkv", "mov", "m4v"),
}
SUBTITLE_EXTS = ("srt", "vtt")
SIDECAR_EXTS = ("txt", "json") + SUBTITLE_EXTS
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")  # en, pt-BR, zh-Hans: a.en.srt is a.mp4's


def plan(root: str, modality: str, first_task: int, shard_size: int, exclude: Sequence[str] = (),
         languages: Sequence[str] = ()) -> tuple[list[ReadTask], int]:
    """Group the folder's media by stem with their sidecars and transcripts, in shard-sized
    tasks. Returns the tasks and the number of files that are none of those, or not used
    (a media file's other subtitle files: `_chosen_subtitles`; the .txt of one with subtitles)."""
    root = root.rstrip("/")
    groups: dict[str, dict[str, list[str]]] = {}
    manifests, ignored = [], 0
    lone_sidecars: dict[str, list[str]] = {}  # stem -> its sidecars, when no media file has that stem
    files = [p[len(root) + 1:] for p in fileio.list_files(root, exclude)]
    media_stems = {stem_of(f) for f in files if ext_of(f) in MEDIA_EXTS[modality]}
    if not media_stems:  # transcripts alone: the wrong --format, or no media yet (sources._nothing_found says)
        return [], len(files)
    for rel in sorted(files, key=lambda f: (stem_of(f) not in media_stems, f)):  # a.srt before a.en.srt
        ext, stem = ext_of(rel), stem_of(rel)
        if ext in SUBTITLE_EXTS and stem not in media_stems and _LANGUAGE_TAG.fullmatch(stem.rpartition(".")[2]):
            stem = stem.rpartition(".")[0]  # yt-dlp's a.en.srt: the subtitles of a.mp4
        if ext in MEDIA_EXTS[modality] or (stem in media_stems and ext in SIDECAR_EXTS):
            groups.setdefault(stem, {}).setdefault(ext, []).append(rel)
        elif transcripts.is_transcripts_name(rel):
            manifests.append(fileio.join(root, rel))
        elif ext in SIDECAR_EXTS:  # a text whose media file is missing (a download that failed): a row
            lone_sidecars.setdefault(stem, []).append(rel)
        else:
            ignored += 1
    for stem, group in groups.items():  # one subtitle file a media file; the others are ignored files
        subtitles = [f for ext in SUBTITLE_EXTS for f in group.pop(ext, [])]
        if subtitles:
            chosen = _chosen_subtitles(stem, subtitles, languages)
            group[ext_of(chosen)] = [chosen]
            ignored += len(subtitles) - 1
            ignored += len(group.pop("txt", []))  # each clip's text is its cues': the .txt is not used
    texts, bad = transcripts.captions_by_id(sorted(manifests))
    by_id = {transcripts.media_id(s): s for s in sorted(groups)}
    items = [(s, groups[s], texts.get(transcripts.media_id(s), [])) for s in sorted(groups)]
    orphans = [(ident, t) for ident, t in sorted(texts.items()) if ident not in by_id]
    chunks = [items[i:i + shard_size] for i in range(0, len(items), shard_size)]
    tasks = [ReadTask(first_task + n, modality, root, payload={"items": c}, is_shard=True) for n, c in enumerate(chunks)]
    lone = sorted(lone_sidecars.items())
    if orphans or bad or lone:  # texts without media, and lines that could not be read: one more task
        tasks.append(ReadTask(first_task + len(tasks), modality, root, payload={"orphans": orphans, "bad": bad, "lone_sidecars": lone},
                              is_shard=True))
    return tasks, ignored


def _chosen_subtitles(stem: str, names: list[str], languages: Sequence[str]) -> str:
    """A media file's subtitles among several: a.srt, else a.vtt, else a language-tagged file
    (yt-dlp's a.en.srt) in one of `languages` (text.languages; pt for pt-BR), else the first
    tagged one; ties in name order."""
    wanted = {code.lower() for code in languages}

    def rank(name: str):
        tag = stem_of(name)[len(stem) + 1:]  # "" for a.srt, "en" for a.en.srt
        return (tag != "", tag.split("-")[0].lower() not in wanted, name)
    return min(names, key=rank)


def read(task: ReadTask, _cfg=None) -> Iterator[SourceRow]:
    modality, root = task.format, task.locator
    i = 0
    for stem, files, texts in task.payload.get("items", []):
        for ext in MEDIA_EXTS[modality]:
            for rel in files.get(ext, []):  # a.wav and a.flac share a key: the second is input.duplicate_key
                yield _media_row(task, i, root, stem, rel, files, texts)
                i += 1
    for ident, texts in task.payload.get("orphans", []):
        yield SourceRow(make_key(ident), (task.task, i), f"{root} transcripts: {ident}", caption=texts[0], captions=list(texts),
                        verdict=Verdict.reject(f"align.missing_{modality}", "a transcript or caption whose media file is not in the folder"))
        i += 1
    for stem, names in task.payload.get("lone_sidecars", []):
        yield SourceRow(make_key(stem), (task.task, i), fileio.join(root, names[0]),
                        verdict=Verdict.reject(f"align.missing_{modality}", f"{', '.join(names)}: no {modality} file of that name in the folder"))
        i += 1
    for entry in task.payload.get("bad", []):
        yield SourceRow(f"bad_{task.task:05d}_{i:09d}", (task.task, i), f"{entry.media_id}:{entry.line}", verdict=Verdict.reject(entry.reason, entry.error))
        i += 1


def _media_row(task, i, root, stem, rel, files, texts) -> SourceRow:
    path = fileio.join(root, rel)
    sidecar = read_sidecar(root, files)
    row = SourceRow(make_key(stem), (task.task, i), path, media=path, caption_bytes=sidecar.caption_bytes,
                    captions=list(sidecar.captions), extra=sidecar.extra, verdict=sidecar.verdict)
    if texts and not sidecar.has_text:
        row.captions = [as_checked_text(t) for t in texts]
    subtitles = [f for ext in SUBTITLE_EXTS for f in files.get(ext, [])]  # (one at most: plan chose it)
    if subtitles:
        row.subtitles = fileio.join(root, subtitles[0])
    return row  # no text at all: prepare decides (a video may carry a subtitle stream)
