"""Every source format end to end on generated data: exact counts, keys, captions, extra
columns, read back with webdataset and wids, and `validate` passes."""

import csv
import gzip
import io
import json
import os
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.util import jpeg, manifest, run_cli, samples, stats, write


def curate(src, out, *args):
    assert run_cli("run", *src, "-o", out, "--workers", "1", "--no-progress", *args) == 0
    assert run_cli("validate", out) == 0
    return stats(out)


def image_rows(folder, n, start=0):
    rows = []
    for i in range(start, start + n):
        write(os.path.join(folder, "imgs", f"p{i}.jpg"), jpeg(300, 240, seed=i))
        rows.append({"url": f"imgs/p{i}.jpg", "caption": f"photo number {i}", "license": f"cc-{i}"})
    return rows


def check_table_run(out, n_good):
    s = stats(out)
    assert s["format"] == "table"
    got = {x["__key__"]: x for x in samples(out)}
    assert len(got) == n_good == s["kept"]
    first = json.loads(got["00000_000000000"]["json"])
    assert first["caption"] == "photo number 0" and first["license"] == "cc-0"
    assert first["source"].endswith("imgs/p0.jpg")
    return s


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl.gz", "parquet"])
def test_table_formats(tmp_path, kind):
    rows = image_rows(tmp_path, 4)
    rows.append({"url": "", "caption": "no url here", "license": "x"})
    rows.append({"url": "imgs/missing.jpg", "caption": "a missing file", "license": "x"})
    path = tmp_path / f"list.{kind}"
    if kind in ("csv", "tsv"):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["url", "caption", "license"], delimiter="," if kind == "csv" else "\t")
            w.writeheader()
            w.writerows(rows)
    elif kind == "jsonl.gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
            f.write("{not json\n")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    out = tmp_path / "out"
    s = curate([path], out)
    check_table_run(out, 4)
    assert s["dropped"] == {"input.missing_url": 1}
    expected_failed = {"fetch.not_found": 1}
    if kind == "jsonl.gz":
        expected_failed["input.bad_row"] = 1
    assert s["failed"] == expected_failed
    assert s["inputs"] == 6 + (kind == "jsonl.gz")


def test_table_columns_and_key_column(tmp_path):
    rows = [{"URL": r["url"], "TEXT": r["caption"], "id": f"img-{i}.x"} for i, r in enumerate(image_rows(tmp_path, 3))]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    out = tmp_path / "out"
    curate([tmp_path / "t.parquet"], out, "--url-col", "URL", "--caption-col", "TEXT", "--key-col", "id")
    keys = sorted(x["__key__"] for x in samples(out))
    assert len(keys) == 3 and all(k.startswith("img-") and "." not in k for k in keys)
    assert json.loads(samples(out)[0]["json"])["id"].startswith("img-")
    # ids that pandas wrote as NaN (missing): those rows keep their position keys, not one key "nan"
    pq.write_table(pa.table({"URL": [r["URL"] for r in rows], "TEXT": [r["TEXT"] for r in rows], "id": [1.0, float("nan"), float("nan")]}), tmp_path / "n.parquet")
    curate([tmp_path / "n.parquet"], tmp_path / "nan", "--url-col", "URL", "--caption-col", "TEXT", "--key-col", "id", "--dedup", "none")
    assert sorted(x["__key__"] for x in samples(tmp_path / "nan")) == ["00000_000000001", "00000_000000002", "1_0-e8dc057d33"]  # ("1.0": its dot changed, so a hash)


@pytest.mark.parametrize("kind", ["parquet", "jsonl"])
def test_table_captions_that_are_not_one_text(tmp_path, kind):
    """A list is several captions; null, NaN and [] are none; a number, true/false or an object
    is input.bad_caption, never str()-ed into a caption like "nan" or "{'en': ...}"."""
    captions = [["a dog on a beach", "b", "a brown dog running"], [], None, 1.5, True, {"en": "a dog"}]
    if kind == "parquet":  # (one type per column: each caption in a column of its own)
        names = []
        for i, caption in enumerate(captions):
            write(str(tmp_path / f"imgs/p{i}.jpg"), jpeg(300, 240, seed=i))
            pq.write_table(pa.Table.from_pylist([{"url": f"imgs/p{i}.jpg", "caption": caption}]), tmp_path / f"t{i}.parquet")
            names.append(tmp_path / f"t{i}.parquet")
        pq.write_table(pa.table({"url": ["imgs/p0.jpg"], "caption": pa.array([float("nan")])}), tmp_path / "t6.parquet")
        names.append(tmp_path / "t6.parquet")
    else:
        for i, caption in enumerate(captions):
            write(str(tmp_path / f"imgs/p{i}.jpg"), jpeg(300, 240, seed=i))
        write(str(tmp_path / "t.jsonl"), "\n".join(json.dumps({"url": f"imgs/p{i}.jpg", "caption": c}) for i, c in enumerate(captions)))
        names = [tmp_path / "t.jsonl"]
    out = tmp_path / "out"
    assert run_cli("run", *names, "-o", out, "--workers", "1", "--no-progress", "--dedup", "none") == 0
    rows = sorted(manifest(out), key=lambda r: (r["order_task"], r["order_row"]))
    assert [(r["reason"], r["caption"], r["captions"]) for r in rows[:6]] == [
        ("", "a dog on a beach", ["a dog on a beach", "a brown dog running"]),  # "b" is text.too_short
        ("input.missing_caption", "", []), ("input.missing_caption", "", []),
        ("input.bad_caption", "", []), ("input.bad_caption", "", []), ("input.bad_caption", "", []),
    ]
    assert rows[3]["error"] == "column 'caption' is a number, not text: 1.5"
    assert rows[5]["error"] == "column 'caption' is an object, not text: {'en': 'a dog'}"
    if kind == "parquet":
        assert rows[6]["reason"] == "input.missing_caption"  # NaN, as pandas writes a missing value


def test_a_json_sidecar_with_a_list_or_a_number_as_its_caption(tmp_path):
    for i, caption in enumerate([["a red car", "a car parked on a street"], 42, "broken \udcff escape"]):
        write(str(tmp_path / f"in/s{i}.jpg"), jpeg(300, 240, seed=i))
        write(str(tmp_path / f"in/s{i}.json"), json.dumps({"caption": caption, "licence": "cc"}))
    out = tmp_path / "out"
    s = curate([tmp_path / "in"], out, "--dedup", "none")
    assert (s["kept"], s["dropped"]) == (1, {"input.bad_caption": 1, "text.invalid_utf8": 1})
    rows = {r["key"]: r for r in manifest(out)}
    assert rows["s0"]["captions"] == ["a red car", "a car parked on a street"] and rows["s0"]["caption"] == "a red car"
    assert rows["s1"]["error"] == "the sidecar json's caption is a number, not text: 42"
    assert json.loads(samples(out)[0]["json"])["licence"] == "cc"


def test_several_table_files_keep_input_order(tmp_path):
    for part in range(2):
        rows = image_rows(tmp_path, 3, start=3 * part)
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / f"part{part}.parquet")
    out = tmp_path / "out"
    s = curate([tmp_path / "part0.parquet", tmp_path / "part1.parquet"], out, "--shard-size", "2")
    assert [sh["samples"] for sh in s["shards"]] == [2, 1, 2, 1]  # shards never straddle files
    assert [x["__key__"] for x in samples(out)] == ["00000_000000000", "00000_000000001", "00000_000000002", "00001_000000000", "00001_000000001", "00001_000000002"]


def test_coco(tmp_path):
    images = [{"id": i, "file_name": f"COCO_{i:012d}.jpg", "width": 300, "height": 240} for i in (1, 2, 3)]
    for img in images[:2]:
        write(str(tmp_path / "images" / img["file_name"]), jpeg(300, 240, seed=img["id"]))
    annotations = [
        {"id": 10, "image_id": 1, "caption": "A man riding a horse."},
        {"id": 11, "image_id": 1, "caption": "Someone on horseback."},
        {"id": 12, "image_id": 2, "caption": "A bowl of fruit."},
        {"id": 13, "image_id": 99, "caption": "Points at no image."},
        {"id": 14, "image_id": 3, "caption": "Listed, captioned, but not on disk."},
    ]
    images.append({"id": 4, "file_name": "COCO_no_captions.jpg"})
    write(str(tmp_path / "captions_val.json"), json.dumps({"images": images, "annotations": annotations}))
    out = tmp_path / "out"
    s = curate([tmp_path / "captions_val.json"], out)
    assert s["format"] == "coco"
    assert s["kept"] == 2
    assert s["failed"] == {"fetch.not_found": 1}  # image 3 is listed but not on disk
    assert s["dropped"] == {"input.missing_caption": 1, "input.missing_image": 1}
    got = {x["__key__"]: json.loads(x["json"]) for x in samples(out)}
    assert got["COCO_000000000001"]["captions"] == ["A man riding a horse.", "Someone on horseback."]
    assert got["COCO_000000000001"]["caption"] == "A man riding a horse." and got["COCO_000000000001"]["id"] == 1


def test_coco_annotations_that_are_not_captions(tmp_path):
    images = [{"id": i, "file_name": f"c{i}.jpg"} for i in (1, 2, 3)] + ["not an image entry"]
    for img in images[:3]:
        write(str(tmp_path / "images" / img["file_name"]), jpeg(300, 240, seed=img["id"]))
    annotations = [
        {"image_id": 1, "caption": None}, {"image_id": 1, "caption": ["A dog on a sofa.", "A sleeping dog."]},
        {"image_id": 2, "caption": 7}, {"image_id": 3, "caption": None},
        {"caption": "no image_id"}, "not an annotation",
    ]
    write(str(tmp_path / "captions.json"), json.dumps({"images": images, "annotations": annotations}))
    out = tmp_path / "out"
    s = curate([tmp_path / "captions.json"], out, "--dedup", "none")
    assert (s["inputs"], s["kept"]) == (6, 1)
    assert s["dropped"] == {"input.bad_caption": 1, "input.missing_caption": 1}
    assert s["failed"] == {"input.bad_row": 3}  # two annotations and one image entry
    rows = {r["key"]: r for r in manifest(out)}
    assert rows["c1"]["captions"] == ["A dog on a sofa.", "A sleeping dog."]  # null is no caption, not "None"
    assert rows["c2"]["error"] == "annotation 2's caption is a number, not text: 7"
    assert rows["c3"]["reason"] == "input.missing_caption"
    assert sorted(r["error"][:24] for r in rows.values() if r["reason"] == "input.bad_row") == [
        "annotation 4 is not an o", "annotation 5 is not an o", "image 3 is not an object"]


def test_flickr_with_images_flag(tmp_path):
    lines = ["image,caption"]
    for i in range(3):
        write(str(tmp_path / "pics" / f"{1000 + i}_abc.jpg"), jpeg(320, 240, seed=i))
        lines += [f"{1000 + i}_abc.jpg,caption {j} of image {i}" for j in range(5)]
    lines.append('1000_abc.jpg,"a quoted, comma caption"')
    write(str(tmp_path / "pics" / "1003_abc.jpg"), jpeg(320, 240, seed=3))
    data = ("\n".join(lines) + "\n").encode() + "1001_abc.jpg,a caf\u00e9 in latin-1\n1003_abc.jpg,only caf\u00e9\n".encode("latin-1")
    write(str(tmp_path / "captions.txt"), data)
    out = tmp_path / "out"
    s = curate([tmp_path / "captions.txt"], out, "--images", tmp_path / "pics")
    assert s["format"] == "flickr" and s["kept"] == 3 and s["inputs"] == 4
    assert s["dropped"] == {"text.invalid_utf8": 1}  # 1003's only caption is not UTF-8 (never "caf\ufffd")
    got = {x["__key__"]: x for x in samples(out)}
    doc = json.loads(got["1000_abc"]["json"])
    assert len(doc["captions"]) == 6 and doc["captions"][-1] == "a quoted, comma caption"
    assert got["1000_abc"]["txt"] == b"caption 0 of image 0"
    assert len(json.loads(got["1001_abc"]["json"])["captions"]) == 5  # the latin-1 one is left out


def make_tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_webdataset_recuration(tmp_path):
    members = []
    for i in range(4):
        members += [(f"s{i}.jpg", jpeg(300, 240, seed=i)), (f"s{i}.txt", f"sample {i}".encode()), (f"s{i}.json", json.dumps({"score": i}).encode())]
    members += [("../../etc/x.jpg", jpeg(300, 240, seed=50)), ("../../etc/x.txt", b"escape")]
    members += [("nocap.jpg", jpeg(300, 240, seed=51))]
    members += [("dir/deep.sample.jpg", jpeg(300, 240, seed=52)), ("dir/deep.sample.txt", b"key with a dir and a dot")]
    members += [("j0.jpg", jpeg(300, 240, seed=53)), ("j0.json", json.dumps({"caption": ["a json caption", "and another"]}).encode())]
    members += [("j1.jpg", jpeg(300, 240, seed=54)), ("j1.json", json.dumps({"caption": 3}).encode())]
    make_tar(tmp_path / "in-000.tar", members)
    make_tar(tmp_path / "in-001.tar", [("t0.jpg", jpeg(300, 240, seed=60)), ("t0.txt", b"second shard")])
    out = tmp_path / "out"
    s = curate([str(tmp_path / "in-{000..001}.tar")], out)
    assert s["format"] == "webdataset"
    assert s["kept"] == 7
    assert s["dropped"] == {"input.bad_caption": 1, "input.missing_caption": 1, "input.unsafe_path": 1}
    got = {x["__key__"]: x for x in samples(out)}
    assert json.loads(got["j0"]["json"])["captions"] == ["a json caption", "and another"] and got["j0"]["txt"] == b"a json caption"
    assert json.loads(got["s2"]["json"])["score"] == 2 and got["s2"]["txt"] == b"sample 2"
    assert "dir_deep" in got and got["dir_deep"]["txt"] == b"key with a dir and a dot"
    assert not os.path.exists(tmp_path / "etc")


def test_format_detection_and_plain_errors(tmp_path, capsys):
    assert run_cli("run", tmp_path / "nope.csv", "-o", tmp_path / "o", "--no-progress") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mmcurate: error: InputError: input not found: {tmp_path / 'nope.csv'}"]
    write(str(tmp_path / "x.bin"), b"?")
    assert run_cli("run", tmp_path / "x.bin", "-o", tmp_path / "o", "--no-progress") == 1
    assert "pass --format" in capsys.readouterr().err
    assert run_cli("run", tmp_path, "-o", tmp_path / "o", "--set", "image.size=1") == 1
    assert "unknown config key 'image.size'" in capsys.readouterr().err


def test_wids_reads_the_index(tmp_path):
    pytest.importorskip("torch")
    import wids

    rows = image_rows(tmp_path, 5)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    out = tmp_path / "out"
    curate([tmp_path / "t.parquet"], out, "--shard-size", "2")
    ds = wids.ShardListDataset(str(out / "index.wids.json"))
    assert len(ds) == 5
    assert ds[4][".txt"] == "photo number 4"
