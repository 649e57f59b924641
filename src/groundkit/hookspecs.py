"""Every groundkit hook, in one module.

Each hook receives a ``register`` callback; call it once per object you contribute. The
host validates the object, records which plugin registered it, and rejects duplicate
names with an error naming both plugins. Implement hooks with ``@groundkit.hookimpl``
in a module exposed through the ``groundkit`` entry-point group::

    [project.entry-points.groundkit]
    my_types = "my_package.plugin"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from groundkit.frames import Frame
    from groundkit.interfaces import (
        Backbone,
        BenchmarkAdapter,
        DecodingBackend,
        Dialect,
        Experiment,
        Extractor,
        Grounder,
        GroundingType,
        RewardTerm,
    )

PROJECT = "groundkit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_frames(register: Callable[[Frame], None]) -> None:
    """Register coordinate frames (:class:`groundkit.Frame` instances), e.g. ``rel-1000``."""


@hookspec
def register_grounding_types(register: Callable[[GroundingType], None]) -> None:
    """Register grounding types (:class:`groundkit.GroundingType` instances), e.g. ``point``.

    A type carries its grammar rule per dialect (:class:`groundkit.Syntax`), its value
    constraints (``ordering``; ``fields``, the value names messages use; per-field
    ``minimums``), geometry and drawing, and optionally ``from_mask`` (so ``groundkit synth``
    can output it) and ``example`` (the grounding prompts show). See docs/plugins.md.
    """


@hookspec
def register_dialects(register: Callable[[Dialect], None]) -> None:
    """Register dialects (:class:`groundkit.Dialect`): a grammar skeleton plus a default frame."""


@hookspec
def register_backbones(register: Callable[[Backbone], None]) -> None:
    """Register VLM backbones (:class:`groundkit.Backbone` instances), e.g. ``qwen2.5-vl``.

    A backbone loads model + processor from a local checkpoint (and builds ``tiny:<name>``
    random models offline), names its native dialect and frame, builds chat prompts and
    gives the LoRA target-module regex.
    """


@hookspec
def register_reward_terms(register: Callable[[RewardTerm], None]) -> None:
    """Register reward terms (:class:`groundkit.RewardTerm` instances), e.g. ``point_f1``.

    A term has a name, the ground-truth fields it reads (``columns``) and a batched
    ``score(batch)`` returning one float per completion, or None where it does not apply.
    Terms compose with weights into a :class:`groundkit.RewardSet` (``"format,point_f1:0.5"``).
    """


@hookspec
def register_benchmark_adapters(register: Callable[[BenchmarkAdapter], None]) -> None:
    """Register benchmark adapters (:class:`groundkit.BenchmarkAdapter` instances), e.g. ``cv-bench-2d``.

    An adapter has a name and ``load(path, media_dir)`` yielding one :class:`groundkit.GroundTruth`
    (or :class:`groundkit.DataError` naming the bad row) per row of a local copy of the benchmark;
    ``groundkit eval --bench NAME:PATH`` evaluates on it.
    """


@hookspec
def register_decoding_backends(register: Callable[[DecodingBackend], None]) -> None:
    """Register decoding backends (:class:`groundkit.decoding.DecodingBackend` instances), e.g. ``groundkit``.

    A backend turns a composed grammar, a tokenizer and the batch's image sizes into a
    ``transformers`` logits processor (``generate(..., backend=NAME)``); the built-in one is
    groundkit's engine, adapters for llguidance / xgrammar use the grammar exports.
    """


@hookspec
def register_grounders(register: Callable[[Grounder], None]) -> None:
    """Register grounders (:class:`groundkit.Grounder` instances), e.g. ``sam3``, ``oracle``.

    A grounder turns phrases + an image into candidate masks per phrase, batched over
    queries (``ground(queries)``); the synthesis pipeline resolves several masks per phrase
    and derives points, boxes and polygons from them. Dataclass fields are its parameters
    (``grounder.with_params(checkpoint=...)``, the ``grounder:`` section of a synth config).
    """


@hookspec
def register_extractors(register: Callable[[Extractor], None]) -> None:
    """Register extractors (:class:`groundkit.Extractor` instances), e.g. ``rule``.

    An extractor finds the object mentions (:class:`groundkit.Mention`: phrase, label,
    character span, plural) a distilled trace relies on, batched (``extract(items)``); the
    pipeline grounds each mention and inserts its groundings right after it.
    """


@hookspec
def register_experiments(register: Callable[[Experiment], None]) -> None:
    """Register experiments (:class:`groundkit.Experiment` instances), e.g. ``counting``.

    An experiment is a whole study run by ``groundkit experiment NAME --out DIR``: it builds
    its data and arms from groundkit's own public calls (scenes, synth, train, eval), runs
    resumably stage by stage, and writes ``DIR/results.json`` and ``DIR/report.html``.
    Called once when the registry loads. Example::

        @groundkit.hookimpl
        def register_experiments(register):
            register(MyStudy())
    """
