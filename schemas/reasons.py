"""Every drop reason and failure name mmcurate can give a row, with what it means.

Reasons are short, stable names (`stage-area.what`); tests assert them and users filter the
manifests by them, so renaming one is a breaking change. `status` says whether a row was
*dropped* (a policy decided against it) or *failed* (an error stopped it being processed).
"""

from __future__ import annotations

DROPPED = "dropped"
FAILED = "failed"
KEPT = "kept"

# name -> (status, stage, meaning)
REASONS: dict[str, tuple[str, str, str]] = {
    # input rows that cannot become a sample
    "input.missing_url": (DROPPED, "prepare", "the row has no URL or path in --url-col"),
    "input.missing_caption": (DROPPED, "prepare", "no caption: no sidecar .txt/.json, no caption column value, or no annotation"),
    "input.missing_image": (DROPPED, "prepare", "a caption (sidecar or annotation) whose image does not exist in the input"),
    "input.unsafe_path": (DROPPED, "prepare", "a tar member or path that escapes its root (`..`, absolute path)"),
    "input.unsupported_media": (DROPPED, "prepare", "a shard sample with audio or video members: --format webdataset re-curates image-text samples only"),
    "input.bad_row": (FAILED, "prepare", "a row of a table that cannot be parsed (bad JSON line, wrong column count)"),
    "input.bad_caption": (DROPPED, "prepare", "the caption value is not text or a list of texts: a number, true/false or an object (a wrong --caption-col?)"),
    "input.unreadable": (FAILED, "prepare", "an input file that cannot be opened or parsed at all (counted as one row)"),
    "input.too_many_rows": (FAILED, "prepare", "a video or audio file past the 33,554,432th row of one input file (its clips need the room: split the list into several files)"),
    "input.duplicate_key": (DROPPED, "dedup", "another input row has the same key; the first in input order is kept"),
    # fetching bytes
    "fetch.not_found": (FAILED, "prepare", "the file or URL does not exist (HTTP 404/410, missing file)"),
    "fetch.http_error": (FAILED, "prepare", "an HTTP 4xx other than 404/410, or 5xx after all retries"),
    "fetch.timeout": (FAILED, "prepare", "connect or read timeout, or the whole download took longer than its deadline"),
    "fetch.connection_error": (FAILED, "prepare", "connection refused or reset, DNS failure, TLS error (after retries)"),
    "fetch.too_large": (FAILED, "prepare", "the body exceeded --set fetch.max_bytes (audio.max_bytes for audio, video.max_bytes for remote videos)"),
    "fetch.bad_url": (FAILED, "prepare", "the URL cannot be parsed or uses an unsupported scheme"),
    "fetch.private_host": (DROPPED, "prepare", "the URL resolves to a private, loopback or link-local address (allow with --allow-private-hosts)"),
    "fetch.opt_out": (DROPPED, "prepare", "the server sent X-Robots-Tag noai / noimageai / noindex"),
    # image decoding and checks
    "image.empty_file": (FAILED, "prepare", "zero bytes"),
    "image.unidentified": (FAILED, "prepare", "the bytes are not an image format Pillow knows"),
    "image.truncated": (FAILED, "prepare", "the image data ends early"),
    "image.decode_error": (FAILED, "prepare", "the image is malformed and cannot be decoded"),
    "image.too_many_pixels": (DROPPED, "prepare", "declared width x height above image.max_pixels (decompression-bomb guard, checked before decoding)"),
    "image.too_small": (DROPPED, "prepare", "shorter side below image.min_side"),
    "image.aspect_ratio": (DROPPED, "prepare", "long side / short side above image.max_aspect_ratio"),
    # audio decoding and checks
    "audio.decode_error": (FAILED, "prepare", "the file is not a container PyAV can open, or its audio cannot be decoded"),
    "audio.truncated": (FAILED, "prepare", "less audio decodes than the file declares (wav, flac, ogg, mp4 and mkv do, an mp3 with a Xing/Info frame does): it was cut short, or damage stops the decoding early; or the container cannot be read to its end"),
    "audio.corrupt": (FAILED, "prepare", "more than audio.max_gap seconds of the audio is lost to damage (packets that do not decode, a jump in the time stamps); less is kept, silence standing in, and recorded as audio_gap"),
    "audio.no_audio_stream": (DROPPED, "prepare", "the container has no audio stream"),
    "audio.empty": (DROPPED, "prepare", "the audio stream decodes to zero samples"),
    "audio.too_short": (DROPPED, "prepare", "duration below audio.min_duration"),
    "audio.too_long": (DROPPED, "prepare", "duration above audio.max_duration (a file cut into clips: audio.max_source_duration)"),
    "audio.silent": (DROPPED, "prepare", "peak level at or below audio.silence_dbfs: all silence"),
    "audio.channels": (DROPPED, "prepare", "more channels than audio.max_channels"),
    "audio.bad_subtitles": (FAILED, "prepare", "no cue of the audio's .srt/.vtt sidecar can be read (a VTT without its header, or every cue malformed; the first error names its line); a malformed cue among readable ones is left out and named in the file's clips' json (skipped_cues, subtitle_errors)"),
    "audio.no_cues": (DROPPED, "prepare", "the audio's subtitles hold no usable cue inside the audio, or its --clips-col cell no span"),
    "audio.clip_too_short": (DROPPED, "prepare", "a clip (a cue, or a span --clips-col gives) of an audio file shorter than audio.min_clip"),
    "audio.clip_outside": (DROPPED, "prepare", "a clip span the table gives (--clips-col) lies wholly outside the audio"),
    "audio.too_many_clips": (FAILED, "prepare", "a subtitled audio file with more than 32,768 clips (raise audio.min_clip or audio.merge_gap, or split the file)"),
    "audio.clip_silent": (DROPPED, "prepare", "a clip cut at a cue is all silence (peak at or below audio.silence_dbfs): subtitles out of step with the audio"),
    # video decoding, checks and cutting (a video becomes one row per planned clip)
    "video.decode_error": (FAILED, "prepare", "the file is not a container PyAV can open, or its video cannot be decoded"),
    "video.no_video_stream": (DROPPED, "prepare", "the container has no video stream (audio only, subtitles only)"),
    "video.too_short": (DROPPED, "prepare", "duration below video.min_duration"),
    "video.too_long": (DROPPED, "prepare", "duration above video.max_duration"),
    "video.too_small": (DROPPED, "prepare", "shorter side below video.min_side"),
    "video.bad_fps": (DROPPED, "prepare", "frame rate unknown or outside [video.min_fps, video.max_fps]"),
    "video.bad_subtitles": (FAILED, "prepare", "no cue of the .srt/.vtt sidecar or subtitle stream can be read: a VTT without its header, or every cue malformed (the first error names its line); a malformed cue among readable ones is left out and named in the video's clips' json (skipped_cues, subtitle_errors)"),
    "video.no_cues": (DROPPED, "prepare", "subtitles with no usable cue inside the video"),
    "video.clip_too_short": (DROPPED, "prepare", "a planned clip (cue) shorter than video.min_clip"),
    "video.clip_outside": (DROPPED, "prepare", "a clip span the table gives (--clips-col) lies wholly outside the video"),
    "video.cut_error": (FAILED, "prepare", "cutting or re-encoding this clip failed"),
    "video.audio_gap": (DROPPED, "prepare", "more than video.max_audio_gap seconds of the clip have no source audio (packets that do not decode, holes, a soundtrack that starts after or ends before the clip); less is kept, silence standing in, and recorded as audio_gap"),
    # alignment of several inputs by key
    "align.missing_image": (DROPPED, "prepare", "a piece whose key has no image in the image input"),
    "align.missing_text": (DROPPED, "prepare", "a piece whose key has no text (caption, transcript) in any input"),
    "align.missing_audio": (DROPPED, "prepare", "a piece whose key has no audio in the audio input"),
    "align.missing_video": (DROPPED, "prepare", "a piece whose key has no video in the video input"),
    "align.duplicate_piece": (DROPPED, "prepare", "a second piece of the same role for a key (the first in input order is used)"),
    # captions
    "text.invalid_utf8": (DROPPED, "prepare", "caption bytes are not valid UTF-8"),
    "text.empty": (DROPPED, "prepare", "caption empty after cleaning"),
    "text.too_short": (DROPPED, "prepare", "caption shorter than text.min_chars or text.min_words"),
    "text.too_long": (DROPPED, "prepare", "caption longer than text.max_chars or text.max_words"),
    "text.language": (DROPPED, "prepare", "the caption's detected language is not one of text.languages, or less probable than text.min_language_score"),
    # deduplication
    "duplicate.exact_image": (DROPPED, "dedup", "same SHA-256 of original image bytes as `dup_of` (the smallest key survives)"),
    "duplicate.exact_audio": (DROPPED, "dedup", "the same decoded sound (SHA-256 of the stored PCM) as `dup_of`, in any container"),
    "duplicate.exact_video": (DROPPED, "dedup", "a byte-identical clip (same source frames and cut) as `dup_of`"),
    "duplicate.exact_caption": (DROPPED, "dedup", "same normalised caption as `dup_of` (only with dedup.exact_caption: true)"),
    "duplicate.near_image": (DROPPED, "dedup", "a perceptual-hash near-duplicate of `dup_of` (video: most of the clips' sampled frames), its cluster's survivor; `dup_distance` = Hamming bits"),
    "duplicate.near_audio": (DROPPED, "dedup", "a near-duplicate sound of `dup_of` (pHash/dHash of the log-mel spectrogram, `dedup.audio_hash`), its cluster's survivor; `dup_distance` = Hamming bits"),
    "duplicate.near_caption": (DROPPED, "dedup", "a MinHash near-duplicate caption of `dup_of`, its cluster's survivor; `dup_distance` = 1 - estimated Jaccard"),
    # CLIP scoring
    "clip.below_threshold": (DROPPED, "score", "CLIP score below clip.threshold, or outside the top clip.top_fraction of the dataset"),
    "clip.decode_error": (FAILED, "score", "the scorer could not decode the staged image"),
    "clip.inference_error": (FAILED, "score", "the model failed on this sample even alone (a failing batch is retried in halves)"),
    # internal
    "internal.error": (FAILED, "prepare", "an unexpected exception while processing this row (a bug: please report it)"),
}

STAGES = ("prepare", "dedup", "score", "finalize")


def status_of(reason: str) -> str:
    return REASONS[reason][0]


def stage_of(reason: str) -> str:
    return REASONS[reason][1]
