"""Tiny copies of public benchmarks, written in their published layouts (field names, parquet
image structs ``{bytes, path}``, answer letters ``(A)``, pixel points, ...)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def write_parquet(path: Path, rows: list[dict], image_columns: tuple[str, ...] = ()) -> Path:
    """A parquet file whose image columns use the HF ``Image`` struct (bytes + path)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = {}
    for key in rows[0]:
        if key in image_columns:
            fields[key] = pa.array([r[key] for r in rows], type=image_type)
        else:
            fields[key] = pa.array([r[key] for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(fields), path)
    return path


def countbenchqa(root: Path) -> Path:
    rows = [
        {"image": {"bytes": png(), "path": None}, "text": "three red mugs on a shelf", "question": "How many mugs are in the image?", "number": 3},
        {"image": {"bytes": png(80, 60), "path": None}, "text": "two dogs", "question": "How many dogs are in the image?", "number": 2},
        {"image": {"bytes": png(), "path": None}, "text": "broken", "question": "How many?", "number": None},
    ]
    return write_parquet(root / "countbenchqa" / "test-00000-of-00001.parquet", rows, ("image",))


def pixmo_count(root: Path) -> Path:
    d = root / "pixmo"
    (d / "images").mkdir(parents=True)
    (d / "images" / "aaa111.jpg").write_bytes(png(100, 50))
    rows = [
        {"image_url": "https://example.org/x/aaa111.jpg", "image_sha256": "aaa111", "count": 2,
         "points": [{"x": 10.0, "y": 20.0}, {"x": 90.0, "y": 40.0}], "label": "apples"},
        {"image_url": "https://example.org/x/bbb222.jpg", "image_sha256": "bbb222", "count": 4, "points": None, "label": "cars"},
        {"image_url": "https://example.org/x/ccc333.jpg", "image_sha256": "ccc333", "count": 1, "points": [{"x": 5.0, "y": 5.0}], "label": "cats"},
    ]
    path = d / "validation.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cv_bench(root: Path) -> Path:
    base = {"type": "2D", "prompt": "", "source": "ADE20K", "source_dataset": "ADE20K", "source_filename": "x.jpg", "target_class": None, "target_size": None, "bbox": None}
    rows = [
        {**base, "idx": 0, "task": "Count", "image": {"bytes": png(), "path": "img/2D/count/ade20k_1.png"},
         "question": "How many pictures are in the image?", "choices": ["0", "3", "2", "1"], "answer": "(C)", "filename": "img/2D/count/ade20k_1.png"},
        {**base, "idx": 1, "task": "Relation", "image": {"bytes": png(), "path": "img/2D/relation/ade20k_2.png"},
         "question": "Considering the relative positions of the lamp and the bed, where is the lamp located?", "choices": ["left", "right"],
         "answer": "(B)", "filename": "img/2D/relation/ade20k_2.png"},
        {**base, "idx": 2, "type": "3D", "task": "Depth", "image": {"bytes": png(), "path": "img/3D/depth/x.png"},
         "question": "Which is closer?", "choices": ["a", "b"], "answer": "(A)", "filename": "img/3D/depth/x.png"},
        {**base, "idx": 3, "task": "Count", "image": {"bytes": png(), "path": "img/2D/count/y.png"},
         "question": "How many?", "choices": ["1", "2"], "answer": "(E)", "filename": "img/2D/count/y.png"},
    ]
    return write_parquet(root / "cv-bench" / "test_2d.parquet", rows, ("image",))


def vsr(root: Path) -> Path:
    d = root / "vsr"
    (d / "images").mkdir(parents=True)
    (d / "images" / "000000085637.jpg").write_bytes(png(120, 90))
    rows = [
        {"image": "000000085637.jpg", "image_link": "http://images.cocodataset.org/train2017/000000085637.jpg",
         "caption": "The umbrella is under the bed.", "label": 0, "relation": "under", "subj": "umbrella", "obj": "bed"},
        {"image": "000000085637.jpg", "image_link": "", "caption": "The bed is below the umbrella.", "label": 1, "relation": "below"},
        {"image": "000000099999.jpg", "image_link": "", "caption": "The cat is left of the dog.", "label": 1, "relation": "left of"},
    ]
    path = d / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    return path


def blink(root: Path) -> Path:
    def row(idx: str, sub: str, answer: str) -> dict:
        return {"idx": idx, "question": f"{sub} question?", "sub_task": sub, "image_1": {"bytes": png(), "path": None},
                "image_2": None, "image_3": None, "image_4": None, "choices": ["(A) 2", "(B) 3", "(C) 4"] if sub == "Counting" else ["yes", "no"],
                "answer": answer, "prompt": "", "explanation": ""}

    d = root / "BLINK"
    write_parquet(d / "Counting" / "val-00000-of-00001.parquet", [row("val_Counting_1", "Counting", "(B)")], ("image_1", "image_2", "image_3", "image_4"))
    write_parquet(d / "Spatial_Relation" / "val-00000-of-00001.parquet", [row("val_Spatial_Relation_1", "Spatial_Relation", "(A)")], ("image_1", "image_2", "image_3", "image_4"))
    write_parquet(d / "Jigsaw" / "val-00000-of-00001.parquet", [row("val_Jigsaw_1", "Jigsaw", "(A)")], ("image_1", "image_2", "image_3", "image_4"))
    write_parquet(d / "Counting" / "test-00000-of-00001.parquet", [row("test_Counting_1", "Counting", "")], ("image_1", "image_2", "image_3", "image_4"))
    return d


def whatsup(root: Path) -> Path:
    d = root / "whatsup"
    (d / "data" / "controlled_images").mkdir(parents=True)
    (d / "data" / "controlled_images" / "beer-bottle_on_armchair.jpeg").write_bytes(png(90, 70))
    rows = [
        {"image_path": "data/controlled_images/beer-bottle_on_armchair.jpeg", "caption_options": [
            "A beer bottle on a armchair", "A beer bottle under a armchair", "A beer bottle to the left of a armchair", "A beer bottle to the right of a armchair"]},
        {"image_path": "data/controlled_images/missing.jpeg", "caption_options": ["only one"]},
    ]
    path = d / "data" / "controlled_images_dataset.json"
    path.write_text(json.dumps(rows))
    return path
