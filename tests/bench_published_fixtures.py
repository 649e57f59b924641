"""Tiny copies of the public benchmarks, written in the layouts their authors publish: the same
file names, folders, column names, types and struct forms (parquet image structs
``{bytes, path}``, HF ``Sequence`` of dicts stored as a struct of lists, answer letters ``(A)``,
pixel points, ...). Each builder names its source; the values are made up."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from PIL import Image

IMAGE = ("bytes", "path")


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def write_parquet(path: Path, rows: list[dict], image_columns: tuple[str, ...] = (), types: dict | None = None) -> Path:
    """A parquet file whose image columns use the HF ``Image`` struct (bytes + path); ``types``
    gives other columns' arrow types (inferred otherwise)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = {}
    for key in rows[0]:
        kind = image_type if key in image_columns else (types or {}).get(key)
        fields[key] = pa.array([r[key] for r in rows], type=kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(fields), path)
    return path


def write_jsonl(path: Path, rows: list[dict], tail: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    return path


def countbenchqa(root: Path) -> Path:
    # Source: huggingface.co/datasets/vikhyatk/CountBenchQA, data/test-00000-of-00001.parquet
    # (image: Image, text: string, question: string, number: int).
    rows = [
        {"image": {"bytes": png(), "path": None}, "text": "three red mugs on a shelf", "question": "How many mugs are in the image?", "number": 3},
        {"image": {"bytes": png(80, 60), "path": None}, "text": "two dogs", "question": "How many dogs are in the image?", "number": 2},
        {"image": {"bytes": png(), "path": None}, "text": "broken", "question": "How many?", "number": None},
    ]
    return write_parquet(root / "countbenchqa" / "data" / "test-00000-of-00001.parquet", rows, ("image",))


def url_hash(url: str) -> str:
    """The file name Molmo's downloader (olmo/data/pixmo_datasets.py) gives an image: sha256 of its URL, no extension."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


PIXMO_URLS = [f"https://example.org/photos/{n}.jpg" for n in range(6)]


def pixmo_count(root: Path) -> Path:
    # Source: huggingface.co/datasets/allenai/pixmo-count (README dataset_info): data/{train,validation,test}-*.parquet;
    # image_url: string, image_sha256: string, count: int32, points: Sequence({x: float32, y: float32}) -- stored by
    # `datasets` as a struct of lists {x: [...], y: [...]}, in pixels; label: string. "points ... Missing for the eval
    # sets": validation has no points column here, test has it null. Images are URLs; Molmo's downloader saves each
    # as sha256(image_url) with no extension (here: beside the data, one folder up with an extension, and one only
    # in a separate folder for --images; one never downloaded).
    import pyarrow as pa

    d = root / "pixmo-count"
    points_type = pa.struct([("x", pa.list_(pa.float32())), ("y", pa.list_(pa.float32()))])
    types = {"count": pa.int32(), "points": points_type}

    def row(n: int, count: int, label: str, points: dict | None = None, with_points: bool = True) -> dict:
        r = {"image_url": PIXMO_URLS[n], "image_sha256": f"{n:064x}", "count": count, "label": label}
        return {**r, "points": points} if with_points else r

    write_parquet(d / "data" / "train-00000-of-00001.parquet",
                  [row(0, 2, "apples", {"x": [10.0, 90.0], "y": [20.0, 40.0]}), row(1, 1, "cats", {"x": [5.0], "y": [5.0]})], types=types)
    write_parquet(d / "data" / "validation-00000-of-00001.parquet",
                  [row(2, 4, "cars", with_points=False), row(3, 3, "traffic lights", with_points=False),
                   row(4, 5, "birds", with_points=False), row(5, 2, "boats", with_points=False)], types=types)
    write_parquet(d / "data" / "test-00000-of-00001.parquet", [row(0, 2, "apples", None)], types=types)
    (d / "data" / url_hash(PIXMO_URLS[0])).write_bytes(png(100, 50))  # beside the data, no extension
    (d / "data" / url_hash(PIXMO_URLS[2])).write_bytes(png(40, 30))
    (d / f"{url_hash(PIXMO_URLS[3])}.jpg").write_bytes(png(30, 20))  # one folder up, with an extension
    (root / "pixmo-images").mkdir(parents=True, exist_ok=True)
    (root / "pixmo-images" / url_hash(PIXMO_URLS[4])).write_bytes(png(20, 10))  # only in the --images folder
    # PIXMO_URLS[1] (train) and [5] (validation): never downloaded
    return d


CV_BASE = {"type": "2D", "prompt": "", "source": "ADE20K", "source_dataset": "ADE20K", "source_filename": "x.jpg",
           "target_class": None, "target_size": None, "bbox": None}


def cv_bench(root: Path) -> Path:
    # Source: huggingface.co/datasets/nyu-visionx/CV-Bench (files): test_2d.jsonl + test_2d.parquet and test_3d.jsonl +
    # test_3d.parquet hold the same records twice (jsonl: image = "img/2D/count/ade20k_10.png", recreated by
    # build_img.py; parquet: embedded image struct). Fields: idx, type, task (Count / Relation / Depth / Distance),
    # image, question, choices, answer "(C)", prompt, filename, source, source_dataset, source_filename,
    # target_class, target_size, bbox.
    d = root / "CV-Bench"
    rows = [
        {**CV_BASE, "idx": 0, "task": "Count", "image": "img/2D/count/ade20k_1.png",
         "question": "How many pictures are in the image?", "choices": ["0", "3", "2", "1"], "answer": "(C)", "filename": "img/2D/count/ade20k_1.png"},
        {**CV_BASE, "idx": 1, "task": "Relation", "image": "img/2D/relation/ade20k_2.png",
         "question": "Considering the relative positions of the lamp and the bed, where is the lamp located?", "choices": ["left", "right"],
         "answer": "(B)", "filename": "img/2D/relation/ade20k_2.png"},
        {**CV_BASE, "idx": 3, "task": "Count", "image": "img/2D/count/ade20k_3.png",
         "question": "How many?", "choices": ["1", "2"], "answer": "(E)", "filename": "img/2D/count/ade20k_3.png"},
    ]
    write_jsonl(d / "test_2d.jsonl", rows)
    write_parquet(d / "test_2d.parquet", [{**r, "image": {"bytes": png(), "path": r["filename"]}} for r in rows], ("image",))
    rows_3d = [{**CV_BASE, "idx": 2, "type": "3D", "task": "Depth", "image": "img/3D/depth/x.png", "question": "Which is closer?",
                "choices": ["a", "b"], "answer": "(A)", "filename": "img/3D/depth/x.png"}]
    write_jsonl(d / "test_3d.jsonl", rows_3d)
    write_parquet(d / "test_3d.parquet", [{**r, "image": {"bytes": png(), "path": r["filename"]}} for r in rows_3d], ("image",))
    for r in rows[:2]:  # the img/ folder of the jsonl form; ade20k_3.png is missing
        (d / r["filename"]).parent.mkdir(parents=True, exist_ok=True)
        (d / r["filename"]).write_bytes(png(70, 50))
    return d


def vsr_rows(image: str = "000000085637.jpg", folder: str = "train2017") -> list[dict]:
    link = f"http://images.cocodataset.org/{folder}/{image}"
    meta = {"annotator_id": 31, "vote_true_validator_id": [2, 6], "vote_false_validator_id": []}
    return [
        {"image": image, "image_link": link, "caption": "The umbrella is under the bed.", "label": 0, "relation": "under", **meta},
        {"image": image, "image_link": link, "caption": "The bed is below the umbrella.", "label": 1, "relation": "below", **meta},
    ]


def vsr(root: Path) -> Path:
    # Source: github.com/cambridgeltl/visual-spatial-reasoning data/README.md: data/splits/{random,zeroshot}/
    # {train,dev,test}.jsonl, one object a line (image, image_link, caption, label 0/1, relation, annotator_id,
    # vote_true_validator_id, vote_false_validator_id); images in data/images/ (the authors' zip) or COCO-2017
    # train2017/ val2017/ as image_link says. Here: one image in data/images/, one only in a COCO val2017/ folder
    # outside the repo (found with --images), one missing; plus a line that is not JSON.
    d = root / "visual-spatial-reasoning" / "data"
    (d / "images").mkdir(parents=True)
    (d / "images" / "000000085637.jpg").write_bytes(png(120, 90))
    (root / "coco" / "val2017").mkdir(parents=True)
    (root / "coco" / "val2017" / "000000011111.jpg").write_bytes(png(60, 40))
    test = vsr_rows() + [
        {**vsr_rows("000000011111.jpg", "val2017")[0], "caption": "The cat is left of the dog.", "relation": "left of", "label": 1},
        {**vsr_rows("000000099999.jpg")[0], "caption": "The cup is on the table.", "relation": "on", "label": 1},
    ]
    write_jsonl(d / "splits" / "random" / "test.jsonl", test, "{not json\n")
    write_jsonl(d / "splits" / "random" / "dev.jsonl", vsr_rows())
    write_jsonl(d / "splits" / "zeroshot" / "test.jsonl", vsr_rows()[:1])
    return d / "splits" / "random" / "test.jsonl"


def vsr_hf(root: Path) -> Path:
    # Source: huggingface.co/datasets/cambridgeltl/vsr_random (files): train.jsonl, dev.jsonl, test.jsonl at the top,
    # the same objects as the GitHub splits; the repo holds no images: here the authors' zip is unpacked to images/.
    d = root / "vsr_random"
    (d / "images").mkdir(parents=True)
    (d / "images" / "000000085637.jpg").write_bytes(png(120, 90))
    for split in ("train", "dev", "test"):
        write_jsonl(d / f"{split}.jsonl", vsr_rows())
    return d


BLINK_IMAGES = ("image_1", "image_2", "image_3", "image_4")


def blink(root: Path) -> Path:
    # Source: huggingface.co/datasets/BLINK-Benchmark/BLINK (files and card): one folder per subtask, each with
    # val-00000-of-00001.parquet and test-00000-of-00001.parquet; columns idx, question, sub_task, image_1..image_4
    # (Image, null when unused), choices (list of plain values: "2", "yes", ...), answer "(B)" -- the literal
    # "hidden" in test --, prompt, explanation. Relative_Depth marks two points A and B on the image.
    def row(split: str, sub: str, n: int, choices: list[str], answer: str) -> dict:
        return {"idx": f"{split}_{sub}_{n}", "question": f"{sub.replace('_', ' ')} question {n}?", "sub_task": sub,
                "image_1": {"bytes": png(), "path": None}, "image_2": None, "image_3": None, "image_4": None,
                "choices": choices, "answer": answer, "prompt": "", "explanation": ""}

    d = root / "BLINK"
    subtasks = {"Counting": (["0", "3", "2", "1"], "(B)"), "Spatial_Relation": (["yes", "no"], "(A)"),
                "Relative_Depth": (["A", "B"], "(B)"), "Jigsaw": (["(A)", "(B)"], "(A)")}
    for sub, (choices, answer) in subtasks.items():
        for split, ans in (("val", answer), ("test", "hidden")):
            write_parquet(d / sub / f"{split}-00000-of-00001.parquet", [row(split, sub, n, choices, ans) for n in (1, 2)], BLINK_IMAGES)
    return d


CONTROLLED = ["A beer bottle on a armchair", "A beer bottle under a armchair", "A beer bottle to the left of a armchair",
              "A beer bottle to the right of a armchair"]


def whatsup(root: Path) -> Path:
    # Source: github.com/amitakamath/whatsup_vlms dataset_zoo/aro_datasets.py + README: data/ holds
    # controlled_images_dataset.json and controlled_clevr_dataset.json (a list of {image_path: "data/controlled_images/
    # ...jpeg", caption_options: [...]}), coco_qa_{one,two}_obj.json and vg_qa_{one,two}_obj.json (lists of
    # [image_id, true_caption, false_caption]); images in data/controlled_images/, data/controlled_clevr/,
    # data/val2017/{id:012d}.jpg and data/vg_images/{id}.jpg. The first caption is always the right one.
    d = root / "whatsup_vlms" / "data"
    images = {"controlled_images/beer-bottle_on_armchair.jpeg": (90, 70), "controlled_images/beer-bottle_under_armchair.jpeg": (90, 70),
              "controlled_clevr/cube_left_of_sphere.jpeg": (50, 50), "val2017/000000000139.jpg": (64, 48), "val2017/000000000285.jpg": (64, 48),
              "vg_images/2377.jpg": (32, 32), "vg_images/498.jpg": (32, 32)}
    for rel, (w, h) in images.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(png(w, h))
    files = {
        "controlled_images_dataset.json": [
            {"image_path": "data/controlled_images/beer-bottle_on_armchair.jpeg", "caption_options": CONTROLLED},
            {"image_path": "data/controlled_images/beer-bottle_under_armchair.jpeg", "caption_options": [CONTROLLED[1], CONTROLLED[0], *CONTROLLED[2:]]}],
        "controlled_clevr_dataset.json": [{"image_path": "data/controlled_clevr/cube_left_of_sphere.jpeg", "caption_options": [
            "A cube to the left of a sphere", "A cube to the right of a sphere", "A cube in front of a sphere", "A cube behind a sphere"]}],
        "coco_qa_one_obj.json": [[139, "A photo of a tv on the left", "A photo of a tv on the right"],
                                 [285, "A photo of a bear on the top", "A photo of a bear on the bottom"]],
        "coco_qa_two_obj.json": [[139, "A photo of a tv to the left of a chair", "A photo of a tv to the right of a chair"],
                                 [139, "A photo of a chair to the right of a tv", "A photo of a chair to the left of a tv"]],
        "vg_qa_one_obj.json": [[2377, "A photo of a dog on the left", "A photo of a dog on the right"]],
        "vg_qa_two_obj.json": [[498, "A photo of a cup above a plate", "A photo of a cup below a plate"],
                               [31337, "A photo of a man behind a car", "A photo of a man in front of a car"]],  # image never downloaded
    }
    for name, rows in files.items():
        (d / name).write_text(json.dumps(rows))
    return d.parent
