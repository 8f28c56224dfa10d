"""mmcurate.loader reads an output folder back as decoded, batched tensors: every kept sample
exactly once (per split, per worker, per node), bit-identical to CLIP's own preprocessing, and
a damaged shard stops the run with its name (or is skipped on request). Hugging Face datasets
reads the same shards."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections import Counter

import pytest

torch = pytest.importorskip("torch")
clip = pytest.importorskip("clip")

import webdataset as wds  # noqa: E402
from apache_beam.io.filesystems import FileSystems  # noqa: E402
from apache_beam.io.localfilesystem import LocalFileSystem  # noqa: E402
from PIL import Image  # noqa: E402

from mmcurate import loader as ld  # noqa: E402
from mmcurate.pipelines.tario import SampleTarWriter, read_samples  # noqa: E402
from tests.util import manifest, samples, stats, upload_tree  # noqa: E402


def keys_of(batches) -> list[str]:
    return [k for batch in batches for k in batch["key"]]


def sample_keys(out: str, **options) -> list[str]:
    """Keys the loader yields, without decoding any tensor (in index order unless shuffled)."""
    return keys_of(ld.dataset(out, modalities=(), **{"shuffle": 0, **options}))


@pytest.fixture(scope="module")
def all_keys(demo_out) -> list[str]:
    """The kept samples in shard order, read with plain webdataset."""
    return [s["__key__"] for s in samples(demo_out)]


def copy_of(demo_out: str, tmp_path) -> str:
    out = str(tmp_path / "out")
    shutil.copytree(demo_out, out)
    return out


def test_every_kept_sample_comes_back_in_shard_order_as_batched_tensors(demo_out, all_keys):
    batches = list(ld.dataset(demo_out, batch_size=32, shuffle=0))
    assert keys_of(batches) == all_keys and len(all_keys) == stats(demo_out)["kept"] == 144
    assert [len(b["key"]) for b in batches] == [32, 32, 32, 32, 16]
    for b in batches:
        n = len(b["key"])
        assert b["image"].shape == (n, 3, 224, 224) and b["image"].dtype == torch.float32
        assert b["text"].shape == (n, 77) and b["text"].dtype == torch.int64
        assert [doc["key"] for doc in b["json"]] == b["key"]
    whole_batches = ld.dataset(demo_out, batch_size=32, shuffle=0, modalities=(), partial_batches=False)
    assert [len(b["key"]) for b in whole_batches] == [32] * 4


def test_tensors_are_clip_preprocessing_and_tokenizer_output(demo_out):
    raw = {s["__key__"]: s for s in samples(demo_out)}
    batch = next(iter(ld.dataset(demo_out, batch_size=8, shuffle=0, image_size=64, context_length=32)))
    preprocess = clip.clip._transform(64)
    for key, image, tokens, doc in zip(batch["key"], batch["image"], batch["text"], batch["json"]):
        caption = raw[key]["txt"].decode("utf-8")
        assert torch.equal(image, preprocess(Image.open(io.BytesIO(raw[key]["jpg"]))))
        assert torch.equal(tokens, clip.tokenize(caption, context_length=32)[0])
        assert doc["caption"] == caption

    custom = next(iter(ld.dataset(demo_out, batch_size=4, shuffle=0, transform=lambda img: torch.tensor(img.size),
                                  tokenizer=lambda text: torch.tensor([len(text)]))))
    assert custom["image"].tolist() == [[doc["width"], doc["height"]] for doc in custom["json"]]
    assert custom["text"].tolist() == [[len(doc["caption"])] for doc in custom["json"]]
    with pytest.raises(ValueError, match="modalities \\['audio'\\]"):
        ld.dataset(demo_out, modalities=("image", "audio"))


def test_splits_partition_the_kept_samples_as_the_manifest_counts_them(demo_out, all_keys):
    kept = [r for r in manifest(demo_out) if r["status"] == "kept"]
    by_split = {}
    for split in ("train", "val", "test"):
        docs = [doc for b in ld.dataset(demo_out, split=split, modalities=(), shuffle=0) for doc in b["json"]]
        assert {doc["split"] for doc in docs} == {split}
        by_split[split] = [doc["key"] for doc in docs]
        assert set(by_split[split]) == {r["key"] for r in kept if r["split"] == split}
    counts = {split: len(keys) for split, keys in by_split.items()}
    assert counts == Counter(r["split"] for r in kept) == stats(demo_out)["splits"]
    assert min(counts.values()) > 20
    assert sorted(k for keys in by_split.values() for k in keys) == sorted(all_keys)  # disjoint, complete
    with pytest.raises(ValueError, match="no kept sample is in split 'valid'"):
        ld.dataset(demo_out, split="valid")


def test_the_index_places_each_split_in_one_byte_range_of_every_shard(demo_out):
    from mmcurate.pipelines.validate import validate

    assert validate(demo_out) == []  # also checks the ranges against the samples
    for entry in ld.shard_entries(demo_out):
        ranges, data = entry["splits"], open(entry["url"], "rb").read()
        assert sorted(ranges, key=lambda name: ranges[name]["offset"]) == ["train", "val", "test"]  # output.splits order
        assert sum(r["nsamples"] for r in ranges.values()) == entry["nsamples"]
        for split, r in ranges.items():  # a range plus the two blocks that end a tar is a tar of the split alone
            docs = [json.loads(s["json"]) for s in read_samples(io.BytesIO(data[r["offset"]:r["offset"] + r["bytes"]] + bytes(1024)))]
            assert len(docs) == r["nsamples"] and {doc["split"] for doc in docs} == {split}


def test_a_split_is_read_from_its_byte_ranges_alone(demo_out, tmp_path):
    out = copy_of(demo_out, tmp_path)
    for entry in ld.shard_entries(out):  # overwrite every byte of the train samples
        train = entry["splits"]["train"]
        with open(entry["url"], "r+b") as f:
            f.seek(train["offset"])
            f.write(b"\xff" * train["bytes"])
    assert sample_keys(out, split="val") == val_keys(demo_out) and len(val_keys(demo_out)) > 20
    assert sample_keys(out, split="test") == sample_keys(demo_out, split="test")
    with pytest.raises(ld.ShardError, match="corrupt or truncated shard after 0 samples"):
        sample_keys(out, split="train")


def test_a_stale_split_range_names_the_sample_and_an_index_without_ranges_is_filtered(demo_out, tmp_path):
    out = copy_of(demo_out, tmp_path)
    index_path = os.path.join(out, ld.INDEX)
    index = json.load(open(index_path))
    swapped = json.loads(json.dumps(index))
    for shard in swapped["shardlist"]:
        shard["splits"]["val"], shard["splits"]["test"] = shard["splits"]["test"], shard["splits"]["val"]
    json.dump(swapped, open(index_path, "w"))
    with pytest.raises(ld.ShardError, match=r"shards/00000.tar: sample \w+: ValueError: it is in split 'test', but "
                                            r"index.wids.json places it in split 'val''s byte range"):
        sample_keys(out, split="val")
    for shard in index["shardlist"]:  # as an output from before the ranges: read whole, filtered
        del shard["splits"]
    json.dump(index, open(index_path, "w"))
    assert sample_keys(out, split="val") == val_keys(demo_out)


def test_two_workers_read_every_sample_once_per_epoch_in_a_new_order(demo_out, all_keys):
    def two_workers():
        return ld.loader(demo_out, num_workers=2, batch_size=16, shuffle=50, modalities=("text",))

    workers = two_workers()
    first, second = keys_of(workers), keys_of(workers)
    assert sorted(first) == sorted(second) == sorted(all_keys) and first != second
    assert keys_of(two_workers()) == first


def test_nodes_read_disjoint_shards(demo_out, all_keys, monkeypatch):
    per_rank = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        per_rank.append(sample_keys(demo_out, shuffle=100))
    assert per_rank[0] and per_rank[1] and sorted(per_rank[0] + per_rank[1]) == sorted(all_keys)


def test_shuffling_is_reproducible_for_a_seed_and_new_each_epoch(demo_out, all_keys):
    shuffled = ld.dataset(demo_out, modalities=(), shuffle=50, seed=7)
    first, second = keys_of(shuffled), keys_of(shuffled)
    assert sorted(first) == sorted(second) == sorted(all_keys)
    assert first == sample_keys(demo_out, shuffle=50, seed=7)
    other_seed = sample_keys(demo_out, shuffle=50, seed=8)
    assert len({tuple(all_keys), tuple(first), tuple(second), tuple(other_seed)}) == 4


def test_resampled_loading_yields_the_requested_epoch(demo_out, all_keys):
    workers = ld.loader(demo_out, num_workers=2, resampled=True, batch_size=16, modalities=("text",))
    batches = list(workers.with_epoch(12))
    assert [len(b["key"]) for b in batches] == [16] * 12 and batches[-1]["text"].shape == (16, 77)
    assert set(keys_of(batches)) <= set(all_keys)
    def five_batches():
        return keys_of(ld.dataset(demo_out, resampled=True, seed=1, batch_size=16, modalities=()).with_epoch(5))

    first = five_batches()
    assert len(first) == 80 and five_batches() == first


def member_offsets(shard: str) -> list[tarfile.TarInfo]:
    with tarfile.open(shard) as tar:
        return tar.getmembers()


@pytest.mark.parametrize("cut, error", [
    ("inside_a_member", r"corrupt or truncated shard after 3 samples: ReadError: unexpected end of data"),
    ("between_samples", r"read 10 samples, but index.wids.json lists 40: the shard is truncated"),
])
def test_a_truncated_shard_stops_the_run_by_name_or_is_skipped(demo_out, all_keys, tmp_path, cut, error):
    out = copy_of(demo_out, tmp_path)
    shard = os.path.join(out, "shards", "00001.tar")
    members = member_offsets(shard)  # three per sample: jpg, json, txt
    os.truncate(shard, members[10].offset_data + 100 if cut == "inside_a_member" else members[30].offset)
    assert ld.shard_index(out)[shard] == 40
    with pytest.raises(ld.ShardError, match=f"00001.tar: {error}"):
        sample_keys(out)

    whole = len(member_offsets(os.path.join(out, "shards", "00000.tar"))) // 3
    complete = 3 if cut == "inside_a_member" else 10
    with pytest.warns(UserWarning, match="00001.tar"):
        keys = sample_keys(out, handler=wds.warn_and_continue)
    assert keys == all_keys[: whole + complete] + all_keys[whole + 40:]


def test_an_undecodable_image_names_its_sample_or_is_skipped(demo_out, all_keys, tmp_path):
    out = copy_of(demo_out, tmp_path)
    shard = os.path.join(out, "shards", "00002.tar")
    with open(shard, "rb") as f:
        rewritten = list(read_samples(f))
    bad = rewritten[5]["__key__"]
    rewritten[5]["jpg"] = b"not an image"
    with open(shard, "wb") as f:
        writer = SampleTarWriter(f)
        for sample in rewritten:
            writer.write(sample)
        writer.close()
    with pytest.raises(ld.ShardError, match=f"00002.tar: sample {bad}: UnidentifiedImageError"):
        list(ld.dataset(out, shuffle=0, image_size=32))
    with pytest.warns(UserWarning, match=bad):
        keys = keys_of(ld.dataset(out, shuffle=0, image_size=32, handler=wds.warn_and_continue))
    assert keys == [k for k in all_keys if k != bad]


class MadeUpRemoteFileSystem(LocalFileSystem):
    """Local files under the scheme mmtest://, standing in for gs:// or s3:// (Beam finds
    FileSystem subclasses by scheme); webdataset's own opener does not know the scheme."""

    @classmethod
    def scheme(cls):
        return "mmtest"

    def join(self, base, *parts):
        return "/".join([base.rstrip("/"), *parts])

    def exists(self, path):
        return super().exists(path.removeprefix("mmtest://"))

    def _path_open(self, path, *args, **kw):
        return super()._path_open(path.removeprefix("mmtest://"), *args, **kw)


@pytest.fixture
def beam_options_restored(monkeypatch):
    """The loader sets Beam's filesystem options for remote outputs: restore them after."""
    monkeypatch.setattr(FileSystems, "_pipeline_options", FileSystems._pipeline_options)


def val_keys(out: str) -> list[str]:
    return [s["__key__"] for s in samples(out) if json.loads(s["json"])["split"] == "val"]


def test_a_remote_output_is_read_through_beam_filesystems(demo_out, beam_options_restored):
    url = f"mmtest://{demo_out}"
    assert ld.shard_urls(url) == [f"{url}/shards/{i:05d}.tar" for i in range(4)]
    assert keys_of(ld.dataset(url, split="val", shuffle=0, modalities=("text",))) == val_keys(demo_out)


@pytest.fixture
def s3_output(demo_out, s3_server, beam_options_restored):
    """The demo output uploaded to the local S3 server: (s3 URL, Beam filesystem options)."""
    return upload_tree(s3_server, demo_out, "curated", "demo"), s3_server.beam_args


def test_an_s3_output_is_read_with_beam_options(demo_out, s3_output):
    url, options = s3_output
    batches = list(ld.dataset(url, split="val", shuffle=0, image_size=32, filesystem_args=options))
    assert keys_of(batches) == val_keys(demo_out) and batches[0]["image"].shape[1:] == (3, 32, 32)


def test_hugging_face_datasets_reads_the_shards(demo_out, tmp_path, monkeypatch):
    for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("webdataset", data_files={"train": ld.shard_urls(demo_out)}, split="train",
                               cache_dir=str(tmp_path / "hf-cache"))
    assert ds.num_rows == stats(demo_out)["kept"]
    assert sorted(ds.column_names) == ["__key__", "__url__", "jpg", "json", "txt"]
    assert Counter(doc["split"] for doc in ds["json"]) == stats(demo_out)["splits"]
    row = ds[0]
    assert row["jpg"].size == (row["json"]["width"], row["json"]["height"]) and row["jpg"].mode == "RGB"
    assert row["txt"] == row["json"]["caption"] and row["__key__"] == row["json"]["key"]


def test_images_asked_of_an_audio_output_fail_in_one_line_and_its_text_loads(demo_out, tmp_path):
    """An audio output's samples hold KEY.flac: it failed per sample with "no image member"."""
    out = tmp_path / "speech-out"
    shutil.copytree(demo_out, out)
    import yaml

    config = yaml.safe_load((out / "config.yaml").read_text())
    config["input"]["format"] = "audio"  # what an audio run's config.yaml says
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=r"holds audio samples \(KEY.flac, KEY.txt, KEY.json\): the loader decodes images and text; "
                                         r"pass modalities=\('text',\)"):
        ld.dataset(str(out))
    assert len(keys_of(ld.loader(str(out), modalities=("text",), shuffle=0))) == stats(demo_out)["kept"]
