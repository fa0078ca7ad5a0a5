"""The record of a session, typed: what ``wattui sessions``/``show``, the comparison
table, the details screen and every export read (docs/session-format.md, "records").

:func:`wattui.sessions.session_record` builds it from a session's files; it travels as
JSON (``--json``, the store's record cache) and as a Polars row. ``from_dict`` checks
every known key's type and keeps the dictionary's keys and their order, so
``SessionRecord.from_dict(d).to_dict() == d`` with the same JSON text: keys this class
does not know (a newer wattui's) are kept as they came, in ``extra``, never dropped.
A known key whose value has the wrong type is refused (:class:`RecordError`), or with
``strict=False`` kept as it came in ``extra`` while its attribute reads as missing.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["RecordError", "DeviceRecord", "SessionRecord"]


class RecordError(ValueError):
    """A record (from the cache, a file, another tool) that is not of this shape."""


def _frozen(value: Any) -> Any:
    """JSON lists as tuples (a frozen record holds no list), recursively."""
    if type(value) is list:
        return tuple(_frozen(v) for v in value)
    if type(value) is dict:
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _thawed(value: Any) -> Any:
    """The JSON shape again: tuples as lists, records as dicts."""
    if isinstance(value, _Record):
        return value.to_dict()
    if type(value) is tuple:
        return [_thawed(v) for v in value]
    if type(value) is dict:
        return {k: _thawed(v) for k, v in value.items()}
    return value


_NUMBER = (int, float)


def _checker(hint: Any) -> typing.Callable[[Any], bool]:
    """A test of a JSON-shaped value (lists already tuples) against a field's type."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        tests = [_checker(a) for a in typing.get_args(hint)]
        return lambda v: any(t(v) for t in tests)
    if hint is type(None):
        return lambda v: v is None
    if hint is Any:
        return lambda v: True
    if hint is bool:
        return lambda v: type(v) is bool
    if hint is int:
        return lambda v: type(v) is int
    if hint is float:  # an int is a float here (JSON writes 2.0 as 2 only if told to)
        return lambda v: type(v) in _NUMBER
    if hint is str:
        return lambda v: type(v) is str
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(item, type) and issubclass(item, _Record):
            return lambda v: type(v) is tuple and all(type(x) is item for x in v)
        test = _checker(item)
        return lambda v: type(v) is tuple and all(test(x) for x in v)
    if origin is Mapping or hint is Mapping:
        args = typing.get_args(hint)
        if not args:
            return lambda v: type(v) is dict
        kt, vt = _checker(args[0]), _checker(args[1])
        return lambda v: type(v) is dict and all(kt(k) and vt(x) for k, x in v.items())
    raise TypeError(f"no check for {hint!r}")


_SCALARS = {type(None): (type(None),), bool: (bool,), int: (int,), float: _NUMBER, str: (str,)}


def _scalar_types(hint: Any) -> frozenset[type] | None:
    """The types a value of ``hint`` may have when it is a scalar or a union of scalars
    (checked by one set lookup), else None."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if not all(a in _SCALARS for a in args):
        return None
    return frozenset(t for a in args for t in _SCALARS[a])


def _scalar_list_types(hint: Any) -> frozenset[type] | None:
    """For ``tuple[<scalars>, ...]``: the types its items may have, else None."""
    if typing.get_origin(hint) is not tuple:
        return None
    args = typing.get_args(hint)
    return _scalar_types(args[0]) if len(args) == 2 and args[1] is Ellipsis else None


class _Record:
    """``from_dict``/``to_dict`` for a frozen dataclass of JSON-shaped fields, plus
    ``keys`` (the dictionary's keys in order) and ``extra`` (keys it does not know)."""

    _REQUIRED: ClassVar[tuple[str, ...]] = ()
    _NESTED: ClassVar[dict[str, type]] = {}
    _scalars: ClassVar[dict[str, frozenset[type]]]
    _lists: ClassVar[dict[str, frozenset[type]]]
    _checks: ClassVar[dict[str, typing.Callable[[Any], bool]]]
    _ORDER: ClassVar[tuple[str, ...]]
    _KNOWN: ClassVar[frozenset[str]]
    _DEFAULTS: ClassVar[dict[str, Any]]
    _FACTORIES: ClassVar[dict[str, typing.Callable[[], Any]]]

    keys: tuple[str, ...]
    extra: Mapping[str, Any]

    @classmethod
    def _setup(cls) -> None:
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls) if f.name not in ("keys", "extra")]
        cls._ORDER = tuple(names)
        cls._KNOWN = frozenset(names)
        scalars = {n: _scalar_types(hints[n]) for n in names}
        cls._scalars = {n: t for n, t in scalars.items() if t is not None}
        lists = {n: _scalar_list_types(hints[n]) for n in names if scalars[n] is None}
        cls._lists = {n: t for n, t in lists.items() if t is not None}
        cls._checks = {n: _checker(hints[n]) for n in names if scalars[n] is None and lists[n] is None}
        fields = [f for f in dataclasses.fields(cls) if f.name not in ("keys", "extra")]
        cls._DEFAULTS = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
        cls._FACTORIES = {
            f.name: f.default_factory for f in fields if f.default_factory is not dataclasses.MISSING
        }

    @classmethod
    def _make(cls, values: dict[str, Any], keys: tuple[str, ...], extra: dict[str, Any]):
        """``cls(**values, keys=keys, extra=extra)`` for values already checked, without
        the frozen dataclass's ``__init__`` (which sets its 70 fields one call at a time:
        a quarter of the time of reading a record)."""
        obj = object.__new__(cls)
        od = obj.__dict__
        od.update(cls._DEFAULTS)
        for name, factory in cls._FACTORIES.items():
            if name not in values:
                od[name] = factory()
        od.update(values)
        od["keys"] = keys
        od["extra"] = extra
        return obj

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], strict: bool = True):
        if not isinstance(d, Mapping):
            raise RecordError(f"a {cls.__name__} is an object, not {type(d).__name__}")
        required = cls._REQUIRED
        for k in required:
            if k not in d:
                raise RecordError(f"{cls.__name__} without {k!r}")
        scalars, lists, checks = cls._scalars, cls._lists, cls._checks
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in d.items():
            ok = scalars.get(k)
            if ok is not None:  # most keys: one set lookup
                if type(v) in ok:
                    values[k] = v
                elif strict or k in required:
                    raise RecordError(f"{cls.__name__}.{k} is not {_type_name(cls, k)}: {v!r:.60}")
                else:
                    extra[k] = v
                continue
            ok = lists.get(k)
            if ok is not None:  # a list of strings: one pass over it
                if type(v) is list and all(type(x) in ok for x in v):
                    values[k] = tuple(v)
                elif strict:
                    raise RecordError(f"{cls.__name__}.{k} is not {_type_name(cls, k)}: {v!r:.60}")
                else:
                    extra[k] = v
                continue
            check = checks.get(k)
            if check is None:
                extra[k] = v
                continue
            nested = cls._NESTED.get(k)
            if nested is not None and type(v) is list:
                try:
                    w = tuple(nested.from_dict(x, strict) for x in v)
                except RecordError:
                    if strict:
                        raise
                    extra[k] = v
                    continue
            else:
                w = _frozen(v)
            if check(w):
                values[k] = w
            elif strict:
                raise RecordError(f"{cls.__name__}.{k} is not {_type_name(cls, k)}: {v!r:.60}")
            else:
                extra[k] = v
        return cls._make(values, tuple(d), extra)

    def to_dict(self) -> dict[str, Any]:
        """The dictionary this record was read from (or, when built in code, every field
        in its declared order), with JSON's lists."""
        out: dict[str, Any] = {}
        for k in self.keys or self._ORDER:
            if k in self.extra:
                out[k] = self.extra[k]
            elif k in self._KNOWN:
                out[k] = _thawed(getattr(self, k))
        return out

    def has(self, key: str) -> bool:
        """Whether the record carries ``key`` at all (a metric never computed is absent,
        one computed and undefined is None)."""
        return (key in self.keys if self.keys else key in self._KNOWN) and key not in self.extra


def _type_name(cls, k: str) -> str:
    return str(typing.get_type_hints(cls)[k]).replace("typing.", "")


@dataclass(frozen=True)
class DeviceRecord(_Record):
    """One measured device of a session (``gpus`` or ``cpu`` of a record)."""

    _REQUIRED: ClassVar[tuple[str, ...]] = ("key",)

    key: str
    index: int | None = None
    uuid: str | None = ""
    name: str | None = ""
    energy_j: float | None = None  # over the session
    method: str | None = None  # how energy_j was obtained (wattui.model.kinds)
    power_method: str | None = None
    mean_w: float | None = None
    peak_w: float | None = None
    last_w: float | None = None
    driver: str | None = None
    simulated: bool = False
    # the run's estimated share of a GPU other processes may use too
    run_energy_j: float | None = None
    # in a multi-node group's record: the device's key on its node, the node, the session
    node_key: str | None = None
    host: str | None = None
    session: str | None = None
    keys: tuple[str, ...] = field(default=(), compare=False, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class SessionRecord(_Record):
    """One session (or a multi-node group: ``kind == "group"``), as every view reads it.
    Figures are what the recorder measured or integrated; ``simulated`` marks simulated
    devices; metric fields are absent when never computed (:meth:`has`)."""

    _REQUIRED: ClassVar[tuple[str, ...]] = ("id", "status")
    _NESTED: ClassVar[dict[str, type]] = {"gpus": DeviceRecord, "cpu": DeviceRecord}

    # -- the session ---------------------------------------------------------------------
    id: str
    status: str  # wattui.model.kinds.STATUSES
    name: str | None = None
    tags: tuple[str, ...] = ()
    command: tuple[str, ...] | str | None = None
    mode: str | None = None  # launch | attach
    pid: int | None = None
    host: str | None = None
    group: str | int | float | None = None  # a scheduler's job id may be a number
    exit_code: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    # -- energy (joules, every measured device) -------------------------------------------
    energy_j: float | None = None
    gpu_energy_j: float | None = None
    energy_above_idle_j: float | None = None
    simulated: bool = False
    gpus: tuple[DeviceRecord, ...] = ()
    cpu: tuple[DeviceRecord, ...] = ()  # the host's packages and memory
    notes: tuple[str, ...] = ()
    reason: str | None = None  # why it failed or was interrupted
    baseline: Mapping[str, Any] | None = None
    metric_rejections: Mapping[str, int] = field(default_factory=dict)
    # -- metrics (wattui.metrics.summary) ---------------------------------------------------
    accuracy: float | None = None
    best_accuracy: float | None = None
    accuracy_key: str | None = None
    accuracy_kind: str | None = None
    accuracy_reports: int | None = None
    model: str | None = None
    epochs_done: float | None = None
    total_epochs: float | None = None
    epochs_note: str | None = None
    co2_g: float | None = None
    cost: float | None = None
    currency: str | None = None
    price_per_kwh: float | None = None
    carbon_g_per_kwh: float | None = None
    carbon_source: str | None = None
    pue: float | None = None
    sam: float | None = None
    sam_accuracy: str | None = None  # which accuracy SAM used: latest | best
    sam_alpha: float | None = None
    sam_beta: float | None = None
    sam_unit: str | None = None
    sam_flag: str | None = None
    sam_undefined_reason: str | None = None
    projected_energy_j: float | None = None
    projected_energy_low_j: float | None = None
    projected_energy_high_j: float | None = None
    projected_end_time: float | None = None
    projected_co2_g: float | None = None
    projected_cost: float | None = None
    projected_sam: float | None = None
    projected_sam_undefined_reason: str | None = None
    projection_note: str | None = None
    projected_per_epoch_j: float | None = None
    projected_per_epoch_s: float | None = None
    projection_epochs_used: int | None = None
    measure_windows: int | None = None
    # -- a multi-node group (wattui.groups.merge_group) ----------------------------------
    kind: str | None = None  # "group"
    hosts: tuple[str, ...] = ()
    session_ids: tuple[str | None, ...] = ()
    nodes: tuple[Mapping[str, Any], ...] = ()
    node_count: int | None = None
    missing_energy_nodes: tuple[str, ...] = ()
    accuracy_node: str | None = None
    # -- problems met reading it ------------------------------------------------------------
    problems: tuple[str, ...] = ()
    keys: tuple[str, ...] = field(default=(), compare=False, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def devices(self) -> tuple[DeviceRecord, ...]:
        """Every measured device: GPUs, then the host's."""
        return self.gpus + self.cpu

    @property
    def is_group(self) -> bool:
        return self.kind == "group"


DeviceRecord._setup()
SessionRecord._setup()
