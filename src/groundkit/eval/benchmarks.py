"""Benchmark adapters: read local copies of public benchmarks into the ground-truth schema.

An adapter (a plugin, see ``register_benchmark_adapters``) turns the files a benchmark is
published as (JSONL, JSON, parquet, a ``datasets`` ``save_to_disk`` folder, or the folder of
a dataset repository holding them) into :class:`GroundTruth` records. Nothing is downloaded:
the user points at files (``NAME:PATH[:SPLIT][?images=DIR]``). A folder holding several
splits needs one named; a split published in two formats (``test_2d.jsonl`` and
``test_2d.parquet``) is read once, from the parquet. Images embedded in the data (parquet /
HF ``Image`` columns) are written once under a media folder so reports can show them;
images referenced by name are looked up beside the data, one folder up and in the ``images``
folder the user names. A bad row (a missing image included) yields a :class:`DataError`
naming it and the read goes on.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from groundkit.errors import DataError, GroundkitError
from groundkit.rewards.groundtruth import GroundTruth

log = logging.getLogger(__name__)

HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
DATA_SUFFIXES = (".parquet", ".jsonl", ".json")  # also the preference when one split is published in several formats
NOT_DATA = {"manifest.json", "run.json", "results.json", *HF_MARKERS}
IMAGE_SUBDIRS = ("", "images")
_SHARD = re.compile(r"-\d{5}-of-\d{5}$")
_ALIASES = {"val": ("validation",), "validation": ("val",), "dev": ("validation", "val"), "valid": ("validation", "val")}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_LETTER = re.compile(r"^\s*\(?([A-Za-z])\)?[.:]?\s*$")
_MAX_DEPTH = 4


@dataclass
class Row:
    """One row of a benchmark file: its id (position in its file, prefixed with the file when
    several are read), its fields, the file it came from and that file's split name."""

    id: str
    data: dict[str, Any]
    source: Path
    split: str | None = None


@dataclass(frozen=True)
class BenchSpec:
    """What ``--bench`` names: adapter, data path, split (None: the only one) and images folder."""

    name: str
    path: Path
    split: str | None = None
    images: Path | None = None

    def __str__(self) -> str:
        text = f"{self.name}:{self.path}" + (f":{self.split}" if self.split else "")
        return text + (f"?images={self.images}" if self.images is not None else "")


def parse_bench_spec(spec: str) -> BenchSpec:
    """``"NAME:PATH"``, ``"NAME:PATH:SPLIT"``, ``"NAME:PATH?split=S&images=DIR"`` -> :class:`BenchSpec`.

    A path that exists as given wins over reading its last ``:part`` as the split."""
    body, _, query = spec.partition("?")
    name, sep, rest = body.partition(":")
    if not sep or not name.strip() or not rest:
        raise GroundkitError(f"a benchmark is NAME:PATH[:SPLIT] (e.g. cv-bench-2d:CV-Bench:test_2d), got {spec!r}")
    path, split = rest, None
    if ":" in rest and not Path(rest).exists():
        path, split = rest.rsplit(":", 1)
    options = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    unknown = sorted(set(options) - {"split", "images"})
    if unknown:
        raise GroundkitError(f"benchmark {spec!r}: unknown option {unknown[0]!r} (known: split, images)")
    if options.get("split") and split and options["split"] != split:
        raise GroundkitError(f"benchmark {spec!r} names two splits ({split!r} and {options['split']!r})")
    split = split or options.get("split") or None
    images = Path(options["images"]) if options.get("images") else None
    return BenchSpec(name.strip(), Path(path), split, images)


def _split_key(f: Path, root: Path) -> tuple[str, str]:
    """(folder relative to ``root``, split name) of a data file: ``data/validation-00000-of-00001.parquet``
    -> ("data", "validation"); ``default/test/0000.parquet`` -> ("default", "test")."""
    stem, folder = _SHARD.sub("", f.stem), f.parent
    if stem.isdigit():
        stem, folder = folder.name, folder.parent
    rel = folder.relative_to(root).as_posix() if folder != root and root in folder.parents else ""
    return rel, stem


def _matches(key: tuple[str, str], split: str) -> bool:
    rel, name = key
    full = f"{rel}/{name}" if rel else name
    return name == split or name in _ALIASES.get(split, ()) or full == split or full.endswith("/" + split)


def _walk(root: Path) -> list[Path]:
    found = []
    for here, dirs, files in os.walk(root):
        depth = len(Path(here).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")) and depth < _MAX_DEPTH)
        found += [Path(here) / f for f in files if Path(f).suffix.lower() in DATA_SUFFIXES and f not in NOT_DATA]
    return sorted(found)


def data_files(path: str | Path, split: str | None = None, prefer: Sequence[str] = (), subsets_by_folder: bool = False) -> list[tuple[Path, str]]:
    """The data files of one split under ``path`` (a file or a folder), each with its split name.

    ``split`` None takes the only split there is, else the first of ``prefer`` present; two or
    more splits without a choice is an error naming them. ``subsets_by_folder``: folders are
    subsets of one benchmark (BLINK's ``Counting/``, ``Spatial_Relation/``), all read; otherwise a
    split found in two folders (VSR's ``random/test`` and ``zeroshot/test``) must be named in full.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"benchmark data not found: {p}")
    if p.is_file():
        key = _split_key(p, p.parent)
        if split is not None and not _matches(key, split):
            raise DataError(f"{p.name} is split {key[1]!r}, not {split!r} (point at the folder, or at the {split} file)")
        return [(p, key[1])]
    groups: dict[tuple[str, str], list[Path]] = {}
    for f in _walk(p):
        groups.setdefault(_split_key(f, p), []).append(f)
    if not groups:
        raise DataError(f"no .jsonl, .json or .parquet files in {p}")
    names = sorted({name for _, name in groups})
    if split is None:
        chosen_name = names[0] if len(names) == 1 else next((s for s in prefer if s in names), None)
        if chosen_name is None:
            raise DataError(f"{p} holds several splits ({', '.join(names)}): name one after the path, e.g. {p}:{names[0]}")
        chosen = [k for k in groups if k[1] == chosen_name]
    else:
        chosen = [k for k in groups if _matches(k, split)]
        if not chosen:
            raise DataError(f"no split {split!r} in {p} (splits there: {', '.join(names)})")
    folders = sorted({rel for rel, _ in chosen})
    if not subsets_by_folder and len(folders) > 1:
        options = ", ".join(f"{rel}/{name}" if rel else name for rel, name in sorted(chosen))
        raise DataError(f"split {split or chosen[0][1]!r} is in several folders of {p} ({options}): name one of them as the split")
    out = []
    for key in sorted(chosen):
        files = groups[key]
        suffix = min((f.suffix.lower() for f in files), key=DATA_SUFFIXES.index)
        kept = [f for f in files if f.suffix.lower() == suffix]
        dropped = [f.name for f in files if f.suffix.lower() != suffix]
        if dropped:
            log.warning("%s: reading %s; %s %s the same records and %s not read", p, ", ".join(f.name for f in kept), ", ".join(dropped),
                        *(("holds", "is") if len(dropped) == 1 else ("hold", "are")))
        out += [(f, key[1]) for f in kept]
    return out


def read_rows(path: str | Path, split: str | None = None, prefer: Sequence[str] = (), subsets_by_folder: bool = False) -> Iterator[Row | DataError]:
    """Rows of one split: a JSONL / JSON / parquet file, a ``datasets`` ``save_to_disk`` folder,
    or a folder of data files (see :func:`data_files` for how the split is chosen)."""
    p = Path(path)
    if p.is_dir() and any((p / m).exists() for m in HF_MARKERS):
        yield from _hf_rows(p, split, prefer)
        return
    files = data_files(p, split, prefer, subsets_by_folder)
    root = p if p.is_dir() else p.parent
    for f, name in files:
        prefix = f"{f.relative_to(root).with_suffix('').as_posix()}:" if len(files) > 1 else ""
        for row in _file_rows(f):
            if isinstance(row, Row):
                row.id, row.split = prefix + row.id, name
            yield row


def _file_rows(p: Path) -> Iterator[Row | DataError]:
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover - pyarrow comes with datasets
            raise GroundkitError("reading parquet needs pyarrow (pip install pyarrow)") from exc
        n = 0
        for batch in pq.ParquetFile(p).iter_batches(batch_size=64):
            for data in batch.to_pylist():
                n += 1
                yield Row(str(n), data, p)
    elif suffix == ".jsonl":
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield DataError(f"{p.name}: not JSON ({exc.msg}, column {exc.colno})", f"line {n}")
                continue
            yield Row(str(n), data, p) if isinstance(data, dict) else DataError(f"{p.name}: expected an object", f"line {n}")
    elif suffix == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{p}: not JSON ({exc.msg}, line {exc.lineno})") from exc
        if isinstance(data, Mapping):
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else [data]
        for n, item in enumerate(data, 1):
            yield Row(str(n), item if isinstance(item, dict) else {"value": item}, p)
    else:
        raise DataError(f"unsupported benchmark file {p.name} (expected .jsonl, .json, .parquet or a folder)")


def _hf_rows(p: Path, split: str | None, prefer: Sequence[str]) -> Iterator[Row | DataError]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets comes with trl
        raise GroundkitError("reading a save_to_disk folder needs the `datasets` package") from exc
    loaded = datasets.load_from_disk(str(p))
    if not isinstance(loaded, datasets.DatasetDict):
        if split is not None:
            log.warning("%s is one saved split; the split %r is not checked", p, split)
        yield from (Row(str(n), dict(data), p, split) for n, data in enumerate(loaded, 1))
        return
    names = list(loaded)
    if split is None:
        name = names[0] if len(names) == 1 else next((s for s in prefer if s in names), None)
        if name is None:
            raise DataError(f"{p} holds several splits ({', '.join(names)}): name one after the path, e.g. {p}:{names[0]}")
    else:
        name = next((n for n in names if _matches(("", n), split)), None)
        if name is None:
            raise DataError(f"no split {split!r} in {p} (splits there: {', '.join(names)})")
    for n, data in enumerate(loaded[name], 1):
        yield Row(str(n), dict(data), p, name)


def find_image(name: str, bases: Sequence[Path | None], subdirs: Sequence[str] = IMAGE_SUBDIRS) -> Path | None:
    """The first existing file ``name`` (or its bare file name) under ``base/subdir`` for the bases
    and subfolders given in order (None bases are skipped); an absolute ``name`` is checked as is."""
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    rels = dict.fromkeys([candidate, Path(candidate.name)])
    for base in bases:
        if base is None:
            continue
        for sub in subdirs:
            for rel in rels:
                if (base / sub / rel).is_file():
                    return base / sub / rel
    return None


def image_bases(row: Row, images: Path | None = None, up: int = 1) -> list[Path]:
    """Where a row's images are looked for: the ``images`` folder, the data file's folder and ``up`` folders above."""
    folder = row.source if row.source.is_dir() else row.source.parent
    return ([images] if images is not None else []) + [folder, *list(folder.parents)[:up]]


def image_file(value: Any, rid: str, row: Row, media_dir: Path | None, bases: Sequence[Path] = (),
               subdirs: Sequence[str] = IMAGE_SUBDIRS) -> tuple[str | None, tuple[int, int]]:
    """Where a row's image is (absolute path; None for an embedded image read without a media
    folder) and its (width, height), from a path, an HF image struct (``{"bytes", "path"}``) or a
    PIL image. Embedded images are written to ``media_dir`` (once). A path is looked for under
    ``bases`` (then beside the data and one folder up); a row without a readable image is a
    :class:`DataError` naming it."""
    from PIL import Image

    if value is None:
        raise DataError("the row has no image", rid)
    if isinstance(value, Image.Image):
        buf = io.BytesIO()
        value.save(buf, format=value.format or "PNG")
        value = {"bytes": buf.getvalue(), "path": None}
    if isinstance(value, Mapping) and value.get("bytes"):
        data: bytes = value["bytes"]
        try:
            img = Image.open(io.BytesIO(data))
            size, fmt = img.size, (img.format or "png").lower()
        except Exception as exc:
            raise DataError(f"embedded image is not readable: {exc}", rid) from exc
        if media_dir is None:
            return None, size
        media_dir.mkdir(parents=True, exist_ok=True)
        target = media_dir / f"{_UNSAFE.sub('_', rid)}.{'jpg' if fmt == 'jpeg' else fmt}"
        if not target.exists():
            target.write_bytes(data)
        return str(target.resolve()), size
    name = value.get("path") if isinstance(value, Mapping) else value
    if not isinstance(name, str) or not name:
        raise DataError(f"image must be a path or an embedded image, got {str(value)[:60]}", rid)
    looked = [*bases, *image_bases(row)]
    found = find_image(name, looked, subdirs)
    if found is None:
        raise DataError(missing_image(name, looked), rid)
    return read_image_size(found, rid)


def read_image_size(path: Path, rid: str) -> tuple[str, tuple[int, int]]:
    """(absolute path, (width, height)) of an image file; an unreadable file is a :class:`DataError`."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return str(path.resolve()), img.size
    except Exception as exc:
        raise DataError(f"image {path} is not readable: {exc}", rid) from exc


def missing_image(name: str, looked: Sequence[Path | None]) -> str:
    """The message for an image that is not where the benchmark's tools put it."""
    where = ", ".join(dict.fromkeys(str(b) for b in looked if b is not None))
    return f"image {name} not found (looked in {where}); download the images or pass --images DIR"


def option_letter(answer: Any, n_choices: int, rid: str) -> str:
    """``"(B)"`` / ``"B"`` / ``"b."`` -> ``"B"``, checked against the number of choices."""
    m = _LETTER.match(str(answer)) if answer is not None else None
    if m is None or not 0 <= ord(m.group(1).upper()) - 65 < max(n_choices, 1):
        raise DataError(f"answer {answer!r} is not one of the {n_choices} option letters", rid)
    return m.group(1).upper()


def truth_from_fields(fields: dict[str, Any], rid: str) -> GroundTruth | DataError:
    """A validated :class:`GroundTruth` from schema fields, or the :class:`DataError` naming the record."""
    try:
        return GroundTruth.from_dict({"id": rid, **fields}, rid)
    except DataError as exc:
        return exc


def load_benchmark(name: str, path: str | Path, media_dir: str | Path | None = None, limit: int | None = None, *,
                   split: str | None = None, images: str | Path | None = None) -> Iterator[GroundTruth | DataError]:
    """Records of benchmark ``name`` (a registered adapter) read from ``path``; at most ``limit``.

    ``split`` and ``images`` are passed to adapters whose ``load`` takes them (all built-in ones)."""
    from groundkit.registry import get_registry

    adapter = get_registry().benchmark_adapter(name)
    extra: dict[str, Any] = {}
    if split is not None:
        extra["split"] = split
    if images is not None:
        if not Path(images).is_dir():
            raise DataError(f"images folder not found: {images}")
        extra["images"] = Path(images)
    params = inspect.signature(adapter.load).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        refused = [k for k in extra if k not in params]
        if refused:
            raise GroundkitError(f"benchmark adapter {name!r} does not take {' or '.join(refused)} (its load() has no such parameter)")
    n = 0
    for item in adapter.load(Path(path), Path(media_dir) if media_dir is not None else None, **extra):
        if limit is not None and n >= limit:
            return
        n += 1
        yield item


def with_images(specs: Sequence[str], images: str | Path | None) -> list[str]:
    """``specs`` with ``?images=DIR`` added to those that name no images folder (``--images DIR``)."""
    if images is None:
        return list(specs)
    out = []
    for spec in specs:
        bench = parse_bench_spec(spec)
        out.append(spec if bench.images is not None else str(BenchSpec(bench.name, bench.path, bench.split, Path(images))))
    return out
