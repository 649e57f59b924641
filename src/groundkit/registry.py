"""The plugin host: loads entry points with an error boundary and collects registrations.

A typed facade with one method per hook (``collect_frames`` ...). Plugins are loaded
lazily (the first :func:`get_registry` call), never at import time.

Error boundary (as llm and pluggy hosts do): a plugin that fails to import, a hook that
raises, an object registered under a name already taken (the first registration wins),
of the wrong kind or with an invalid name, and a grounding type whose grammar rule does
not compile in a dialect it declares are each rejected with a warning naming the plugin,
recorded in :attr:`Registry.failures` (``groundkit plugins`` lists them) and everything
else keeps working. ``GROUNDKIT_STRICT_PLUGINS=1`` turns each of them into an error.
"""

from __future__ import annotations

import copy
import importlib.metadata as md
import logging
import os
import re
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pluggy

from groundkit import hookspecs
from groundkit.errors import GroundkitError, PluginError, UnknownNameError
from groundkit.frames import Frame, ResizedPixelFrame, parse_frame_spec
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

log = logging.getLogger("groundkit.plugins")
ENTRY_POINT_GROUP = "groundkit"
STRICT_ENV = "GROUNDKIT_STRICT_PLUGINS"
T = TypeVar("T")

TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # a grounding type's name is also its Lark rule name
NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")


@dataclass
class PluginInfo:
    """One loaded plugin: its name, origin (distribution), version and what it registered."""

    name: str
    distribution: str
    version: str
    builtin: bool
    registered: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "origin": "builtin" if self.builtin else self.distribution,
            "distribution": self.distribution,
            "version": self.version,
            "registered": [{"kind": k, "name": n} for k, n in self.registered],
        }


@dataclass
class PluginLoadFailure:
    """A plugin that could not be imported, whose hook raised, or something it registered that
    was rejected (a duplicate name, a grammar rule that does not compile: ``error`` says which)."""

    name: str
    distribution: str
    error: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "distribution": self.distribution, "error": self.error}


@dataclass
class Registered(Generic[T]):
    obj: T
    plugin: PluginInfo


class Kind(Generic[T]):
    """A family of registered objects (frames, dialects, ...) keyed by name."""

    def __init__(self, kind: str, cls: type, pattern: re.Pattern[str]):
        self.kind, self.cls, self.pattern = kind, cls, pattern
        self.items: dict[str, Registered[T]] = {}
        self.unavailable: dict[str, str] = {}  # name -> why it was taken out (a failed load check)

    def add(self, obj: T, plugin: PluginInfo) -> None:
        if not isinstance(obj, self.cls):
            raise PluginError(f"plugin {plugin.name!r} registered {obj!r} as a {self.kind}, expected {self.cls.__name__}")
        name = getattr(obj, "name", "")
        if not isinstance(name, str) or not self.pattern.match(name):
            raise PluginError(f"plugin {plugin.name!r} registered a {self.kind} with invalid name {name!r}")
        if name in self.items:
            first = self.items[name].plugin
            raise PluginError(
                f"{self.kind} {name!r} is registered twice: by plugin {first.name!r} "
                f"({first.distribution} {first.version}) and by plugin {plugin.name!r} "
                f"({plugin.distribution} {plugin.version})"
            )
        self.items[name] = Registered(obj, plugin)
        plugin.registered.append((self.kind, name))

    def get(self, name: str) -> T:
        try:
            return self.items[name].obj
        except KeyError:
            if name in self.unavailable:
                raise PluginError(f"{self.kind} {name!r} is unavailable: {self.unavailable[name]}") from None
            raise UnknownNameError(self.kind, name, self.items) from None

    def remove(self, name: str, why: str) -> None:
        """Take a registered object out (it failed a load check); :meth:`get` then says why."""
        self.items.pop(name, None)
        self.unavailable[name] = why

    def names(self) -> list[str]:
        return sorted(self.items)


class Registry:
    """Everything plugins registered, plus the plugins themselves and their load failures."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.failures: list[PluginLoadFailure] = []
        self.frames: Kind[Frame] = Kind("frame", Frame, NAME)
        self.grounding_types: Kind[GroundingType] = Kind("grounding type", GroundingType, TYPE_NAME)
        self.dialects: Kind[Dialect] = Kind("dialect", Dialect, NAME)
        self.backbones: Kind[Backbone] = Kind("backbone", Backbone, NAME)
        self.reward_terms: Kind[RewardTerm] = Kind("reward term", RewardTerm, NAME)
        self.benchmark_adapters: Kind[BenchmarkAdapter] = Kind("benchmark adapter", BenchmarkAdapter, NAME)
        self.decoding_backends: Kind[DecodingBackend] = Kind("decoding backend", DecodingBackend, NAME)
        self.grounders: Kind[Grounder] = Kind("grounder", Grounder, NAME)
        self.extractors: Kind[Extractor] = Kind("extractor", Extractor, NAME)
        self.experiments: Kind[Experiment] = Kind("experiment", Experiment, NAME)
        self.strict = os.environ.get(STRICT_ENV, "") not in ("", "0", "false")

    # --- loading ------------------------------------------------------------------------
    def load_entry_points(self, entry_points: Iterable[md.EntryPoint] | None = None) -> None:
        eps = md.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
        # built-in plugins first, so a clash names the third-party plugin second
        for ep in sorted(eps, key=lambda e: (not (e.dist and e.dist.name == "groundkit"), e.dist.name if e.dist else "", e.name)):
            dist = ep.dist.name if ep.dist else "(unknown)"
            version = ep.dist.version if ep.dist else "?"
            try:
                module = ep.load()
            except Exception as exc:  # error boundary: one bad plugin does not break the host
                self._fail(ep.name, dist, exc)
                continue
            try:
                self.add_plugin(module, ep.name, dist, version, builtin=dist == "groundkit")
            except PluginError as exc:  # two distributions use one entry-point name: the first stays
                self._reject(PluginInfo(ep.name, dist, version, False), exc)

    def add_plugin(self, module: object, name: str, distribution: str = "(local)", version: str = "?", builtin: bool = False) -> PluginInfo:
        """Register a plugin object (a module or instance with ``@hookimpl`` functions)."""
        if name in self.plugins or self.pm.has_plugin(name):
            first = self.plugins[name]
            raise PluginError(
                f"plugin name {name!r} is used twice: by {first.distribution} {first.version} and by {distribution} {version}"
            )
        self.pm.register(module, name=name)
        info = PluginInfo(name, distribution, version, builtin)
        self.plugins[name] = info
        return info

    def _fail(self, name: str, dist: str, exc: BaseException) -> None:
        if self.strict:
            raise exc
        self.failures.append(PluginLoadFailure(name, dist, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        log.warning("groundkit: plugin %r (%s) failed to load: %s: %s", name, dist, type(exc).__name__, exc)

    def _reject(self, info: PluginInfo, exc: PluginError, detail: str = "") -> None:
        """Something a plugin registered is rejected: an error in strict mode, else a warning and a failure."""
        if self.strict:
            raise exc
        self.failures.append(PluginLoadFailure(info.name, info.distribution, str(exc), detail))
        log.warning("groundkit: %s (rejected; set %s=1 to make this an error)", exc, STRICT_ENV)

    def _collect(self, hook_name: str, kind: Kind[Any]) -> None:
        """Call one hook on every plugin, each with a ``register`` callback bound to that plugin;
        a rejected object (duplicate name, wrong kind, invalid name) leaves the plugin's others registered."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            info = self.plugins[impl.plugin_name]

            def register(obj: Any, info: PluginInfo = info) -> None:
                try:
                    kind.add(obj, info)
                except PluginError as exc:
                    self._reject(info, exc)

            try:
                impl.function(register=register)
            except Exception as exc:  # in strict mode _fail re-raises (a rejection included)
                self._fail(info.name, info.distribution, exc)

    # --- one typed method per hook ---------------------------------------------------------
    def collect_frames(self) -> None:
        self._collect("register_frames", self.frames)

    def collect_grounding_types(self) -> None:
        self._collect("register_grounding_types", self.grounding_types)

    def collect_dialects(self) -> None:
        self._collect("register_dialects", self.dialects)

    def collect_backbones(self) -> None:
        self._collect("register_backbones", self.backbones)

    def collect_reward_terms(self) -> None:
        self._collect("register_reward_terms", self.reward_terms)

    def collect_benchmark_adapters(self) -> None:
        self._collect("register_benchmark_adapters", self.benchmark_adapters)

    def collect_decoding_backends(self) -> None:
        self._collect("register_decoding_backends", self.decoding_backends)

    def collect_grounders(self) -> None:
        self._collect("register_grounders", self.grounders)

    def collect_extractors(self) -> None:
        self._collect("register_extractors", self.extractors)

    def collect_experiments(self) -> None:
        self._collect("register_experiments", self.experiments)

    def collect_all(self) -> None:
        self.collect_frames()
        self.collect_grounding_types()
        self.collect_dialects()
        self.collect_backbones()
        self.collect_reward_terms()
        self.collect_benchmark_adapters()
        self.collect_decoding_backends()
        self.collect_grounders()
        self.collect_extractors()
        self.collect_experiments()
        self.check_grounding_types()

    # --- load checks ------------------------------------------------------------------------
    def check_grounding_types(self) -> None:
        """Compile every grounding type's rule in every registered dialect it declares.

        Per dialect, the grammar with all its types is composed once (the common, passing
        case). When that fails, types are added one at a time (built-in ones first) and a type
        whose rule does not compile is taken out of that dialect only, with the reason, as a
        failure of its plugin; the dialect keeps its other types. A type broken in every
        dialect it declares becomes unavailable (asking for it says why).
        """
        from groundkit.text.grammar import compose  # on use: the registry is core, grammars sit above it

        broken: dict[str, dict[str, str]] = {}
        for dname in self.dialects.names():
            dialect = self.dialects.get(dname)
            try:
                frame = self.frame(dialect.default_frame)
            except GroundkitError:
                continue  # a dialect whose default frame is unknown fails when used, naming the frame
            types = [r.obj for r in self.grounding_types.items.values() if r.obj.syntax(dname) is not None]
            if not types or _composes(compose, dialect, frame, sorted(types, key=lambda t: t.name)) is None:
                continue  # (sorted as get_grammar composes it, so the compiled grammar is reused from the cache)
            ok: list[GroundingType] = []
            for t in types:
                why = _composes(compose, dialect, frame, [*ok, t])
                if why is None:
                    ok.append(t)
                else:
                    broken.setdefault(t.name, {})[dname] = why
        for name, dialects in broken.items():
            self._take_out(name, dialects)

    def _take_out(self, name: str, dialects: dict[str, str]) -> None:
        entry = self.grounding_types.items[name]
        for dname, why in dialects.items():
            first = why.strip().splitlines()[0] if why.strip() else why
            err = PluginError(f"grounding type {name!r} of plugin {entry.plugin.name!r} ({entry.plugin.distribution} "
                              f"{entry.plugin.version}) is unavailable in dialect {dname!r}: its rule does not compile: {first}")
            self._reject(entry.plugin, err, why)
        kept = {d: s for d, s in entry.obj.syntaxes.items() if d not in dialects}
        if not any(d in self.dialects.items for d in kept):
            dname, why = next(iter(dialects.items()))
            self.grounding_types.remove(name, f"its rule (plugin {entry.plugin.name!r}) does not compile in dialect "
                                              f"{dname!r}: {why.strip().splitlines()[0] if why.strip() else why}")
            return
        trimmed = copy.copy(entry.obj)  # the plugin's object stays as it was; the registry keeps the working dialects
        trimmed.syntaxes = kept
        entry.obj = trimmed

    # --- lookups --------------------------------------------------------------------------
    def frame(self, spec: str) -> Frame:
        """A frame by name, with optional parameters: ``abs-resized:factor=32,max_pixels=...``."""
        name, params = parse_frame_spec(spec)
        frame = self.frames.get(name)
        if params:
            if not isinstance(frame, ResizedPixelFrame):
                raise UnknownNameError("parameterised frame", spec, [n for n in self.frames.names()])
            frame = frame.with_params(**params)
        return frame

    def grounding_type(self, name: str) -> GroundingType:
        return self.grounding_types.get(name)

    def dialect(self, name: str) -> Dialect:
        return self.dialects.get(name)

    def backbone(self, name: str) -> Backbone:
        return self.backbones.get(name)

    def reward_term(self, name: str) -> RewardTerm:
        return self.reward_terms.get(name)

    def benchmark_adapter(self, name: str) -> BenchmarkAdapter:
        return self.benchmark_adapters.get(name)

    def decoding_backend(self, name: str) -> DecodingBackend:
        return self.decoding_backends.get(name)

    def grounder(self, name: str) -> Grounder:
        return self.grounders.get(name)

    def extractor(self, name: str) -> Extractor:
        return self.extractors.get(name)

    def experiment(self, name: str) -> Experiment:
        return self.experiments.get(name)


def _composes(compose: Callable[..., Any], dialect: Dialect, frame: Frame, types: list[GroundingType]) -> str | None:
    """None when the types' rules compose into a grammar Lark accepts, else why not."""
    try:
        compose(dialect, frame, tuple(types))
    except Exception as exc:  # error boundary: a plugin's rule may break Lark or the composer in any way
        return str(exc) if isinstance(exc, GroundkitError) else f"{type(exc).__name__}: {exc}"
    return None


_REGISTRY: Registry | None = None


def build_registry(extra_plugins: Iterable[tuple[str, object]] = (), entry_points: bool = True) -> Registry:
    """A fresh registry from the installed entry points plus ``(name, module)`` extras."""
    reg = Registry()
    if entry_points:
        reg.load_entry_points()
    for name, module in extra_plugins:
        reg.add_plugin(module, name)
    reg.collect_all()
    return reg


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = build_registry()
    return _REGISTRY


_ON_CHANGE: list[Callable[[], None]] = []


def on_registry_change(callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever :func:`set_registry` replaces the registry (caches derived
    from registered plugins, such as composed grammars, clear themselves this way)."""
    _ON_CHANGE.append(callback)


def set_registry(registry: Registry | None) -> None:
    """Replace (or reset, with None) the process-wide registry; derived caches are cleared."""
    global _REGISTRY
    _REGISTRY = registry
    for callback in _ON_CHANGE:
        callback()
