"""The arms of a comparison: their names, what each trains on, and the generative recipes behind them.

An arm is one training set per repeat. The fixed arms are ``real``, ``classic``, ``duplicate`` and
``pseudo-label``. Every other arm draws on a **source** — a generator method with its options and,
optionally, the classes whose images it may synthesize from — named by a label ``L``:

* ``L`` — the real images plus the source's synthetic images;
* ``classic+L`` — the same, with the classic transform;
* ``L+gate`` — the real images plus the source's images that the quality gate keeps.

A label is a registered method name (``vqvae2``: the method with its defaults, or with ``--set``
when it is ``--method``) or a named **variant** given with ``--arm LABEL=METHOD:key=value,...``
(:func:`parse_variant`), e.g. ``--arm vq-ok=vqvae2:classes=ok,temperature=0.8``. The key
``classes`` restricts the source images to those classes; every other key is a method option.

Methods named in :data:`BASELINE_METHODS` (``cut-paste``) are a practitioner's baseline: the
methods under test are compared against them, and they are not themselves "under test" while any
other method is in the comparison.

Nothing here imports torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lagaug.core.errors import ConfigError

REAL, CLASSIC, DUPLICATE, PSEUDO = "real", "classic", "duplicate", "pseudo-label"
GATE = "gate"  # L+gate: the L arm's images less those the quality gate drops
FIXED = (REAL, CLASSIC, DUPLICATE, PSEUDO)
SYNTHETIC, CLASSIC_SYNTHETIC = "synthetic", "classic+synthetic"  # arm kinds that draw on a source
BASELINE_METHODS = frozenset({"cut-paste"})
CLASSES_KEY = "classes"  # the variant key that restricts the source images to some classes
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NEXT_KEY = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")  # a comma that starts the next key=value


@dataclass(frozen=True)
class Source:
    """A generative recipe: ``method`` with ``options`` (``--set`` values; untyped from the command
    line), synthesizing only from images of ``classes`` (``None``: every class)."""

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    classes: tuple[str, ...] | None = None

    def record(self) -> dict[str, Any]:
        return {"label": self.label, "method": self.method, "options": dict(self.options),
                "classes": None if self.classes is None else list(self.classes)}


@dataclass(frozen=True)
class Arm:
    """One arm: its ``name``, its ``kind`` (``real``, ``classic``, ``duplicate``, ``pseudo-label``,
    ``synthetic``, ``classic+synthetic`` or ``gate``) and, for the last three, its source's label.
    ``baseline``: the arm draws on a baseline method (``cut-paste``) while a method under test is
    in the comparison."""

    name: str
    kind: str
    source: str | None = None
    baseline: bool = False

    @property
    def classic(self) -> bool:
        return self.kind in (CLASSIC, CLASSIC_SYNTHETIC)


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"vq-ok=vqvae2:classes=ok,temperature=0.8"`` -> ``("vq-ok", {"method": "vqvae2",
    "set": {"temperature": "0.8"}, "classes": ["ok"]})``.

    Options are ``key=value`` pairs separated by commas; a comma that is not followed by
    ``key=`` belongs to the value (``region=0,0,4,4``, ``classes=ok,defect``)."""
    label, sep, rest = text.partition("=")
    method, _, opts = rest.partition(":")
    label, method = label.strip(), method.strip()
    if not sep or not label or not method:
        raise ConfigError(f"--arm {text!r}: expected LABEL=METHOD or LABEL=METHOD:key=value,key=value")
    options: dict[str, Any] = {}
    for pair in (p for p in _NEXT_KEY.split(opts) if p.strip()) if opts.strip() else []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--arm {text!r}: {pair.strip()!r} is not key=value")
        options[key.strip()] = value.strip()
    variant: dict[str, Any] = {"method": method, "set": options}
    if CLASSES_KEY in options:
        variant["classes"] = [c.strip() for c in str(options.pop(CLASSES_KEY)).split(",") if c.strip()]
    return label, variant


def variant_source(label: str, variant: dict[str, Any], method: str | None, base_set: dict[str, Any]) -> Source:
    """The :class:`Source` of a variant dict (``method``, ``set``, ``classes``); a variant of
    ``method`` (the run's ``--method``) starts from ``base_set`` (``--set``)."""
    where = f"--arm {label}"
    check_label(label, where)
    if not isinstance(variant, dict) or not isinstance(variant.get("method"), str) or not variant["method"]:
        raise ConfigError(f"{where}: give the method (LABEL=METHOD:key=value,...)")
    unknown = set(variant) - {"method", "set", "classes"}
    if unknown:
        raise ConfigError(f"{where}: unknown field {sorted(unknown)[0]!r}; a variant has method, set and classes")
    options = variant.get("set") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: set must map option names to values")
    if CLASSES_KEY in options:
        raise ConfigError(f"{where}: give classes beside set, not in it")
    classes = variant.get("classes")
    if classes is not None:
        if isinstance(classes, str) or not classes or not all(isinstance(c, str) and c for c in classes):
            raise ConfigError(f"{where}: classes must name at least one class (classes=ok or classes=ok,defect)")
        classes = tuple(classes)
    merged = {**(base_set if variant["method"] == method else {}), **options}
    return Source(label, variant["method"], merged, classes)


def check_label(label: str, where: str) -> None:
    if not _LABEL.match(label) or label in FIXED or label in ("method", GATE):
        raise ConfigError(f"{where}: {label!r} cannot name an arm; use letters, digits, '-', '_' or '.', "
                          f"and none of {', '.join(FIXED)}, method, gate")


def resolve_plan(arms: list[str] | None, method: str | None, variants: dict[str, dict] | None = None,
                 base_set: dict[str, Any] | None = None) -> tuple[list[Arm], dict[str, Source]]:
    """The arms in order and the sources they draw on (label -> :class:`Source`), checked for
    everything that can be checked without the plugins (a name that is neither a fixed arm nor a
    variant is taken for a method name; :meth:`lagaug.core.compare.run.Compare.prepare` checks
    it is one).

    ``arms`` ``None``: ``real``, ``classic``, ``METHOD``, ``classic+METHOD``, ``duplicate`` (with
    ``method``), then every variant's own arm. ``method``, ``classic+method`` and ``method+gate``
    stand for the method's name."""
    variants = dict(variants or {})
    sources: dict[str, Source] = {}
    if method is not None:
        check_label(method, "--method")
        sources[method] = Source(method, method, dict(base_set or {}))
    for label, variant in variants.items():
        if label == method:
            raise ConfigError(f"--arm {label}: the label is --method's own arm; choose another label "
                              "(or set the method's options with --set)")
        sources[label] = variant_source(label, variant, method, base_set or {})
    if arms is None:
        if method is None and not variants:
            raise ConfigError("--method: name a generator method, or list the arms to run with --arms")
        names = ([REAL, CLASSIC, method, f"{CLASSIC}+{method}", DUPLICATE] if method else [REAL, CLASSIC, DUPLICATE])
        names += list(variants)
    else:
        names = [a.strip() for a in arms if a.strip()]
        if not names:
            raise ConfigError("--arms: give at least one arm")
    plan: list[Arm] = []
    for name in names:
        arm = _arm(name, method)
        if any(a.name == arm.name for a in plan):
            raise ConfigError(f"--arms: arm {arm.name!r} is listed twice")
        if arm.source is not None and arm.source not in sources:
            sources[arm.source] = Source(arm.source, arm.source, {})  # a method by its name, with its defaults
        plan.append(arm)
    # in the order the arms name them: arms sharing a fit are credited to the first one listed
    sources = {label: sources[label] for label in dict.fromkeys(a.source for a in plan if a.source is not None)}
    under_test = any(s.method not in BASELINE_METHODS for s in sources.values())
    plan = [Arm(a.name, a.kind, a.source, under_test and a.source is not None
                and sources[a.source].method in BASELINE_METHODS) for a in plan]
    return plan, sources


def _arm(name: str, method: str | None) -> Arm:
    if name in ("method", "classic+method", "method+gate"):
        if method is None:
            raise ConfigError(f"--arms: {name!r} stands for --method's name; give --method or name the method")
        name = name.replace("method", method)
    if name in FIXED:
        return Arm(name, name)
    if name.startswith(f"{CLASSIC}+"):
        kind, label = CLASSIC_SYNTHETIC, name[len(CLASSIC) + 1:]
    elif name.endswith(f"+{GATE}"):
        kind, label = GATE, name[: -len(GATE) - 1]
    else:
        kind, label = SYNTHETIC, name
    if not _LABEL.match(label) or label in FIXED:
        raise ConfigError(f"--arms: unknown arm {name!r}; {ARM_HELP}")
    return Arm(name, kind, label)


ARM_HELP = ("choose from: real, classic, duplicate, pseudo-label, and for NAME a method or an --arm label: "
            "NAME, classic+NAME, NAME+gate")


def primary_source(plan: list[Arm], method: str | None) -> str | None:
    """The source whose images' sources the ``duplicate`` arm copies: ``method``'s when an arm
    draws on it, else the first source an arm draws on (``None``: no arm does)."""
    used = [a.source for a in plan if a.source is not None]
    if method in used:
        return method
    return used[0] if used else None


def comparison_pairs(plan: list[Arm]) -> list[tuple[str, str, bool]]:
    """``(arm, baseline, primary)``: every arm against ``real``; every arm of a method under test
    (kind ``synthetic``) against ``duplicate``, ``pseudo-label`` and every baseline method's arm
    (``cut-paste``); a baseline method's arm against ``duplicate``; ``classic+L`` against
    ``classic``; ``L+gate`` against ``L`` and ``duplicate``. ``primary``: the comparison is one
    the method under test must win (on macro-F1, Holm-corrected together): L vs real, duplicate,
    pseudo-label and cut-paste, classic+L vs classic, L+gate vs L."""
    names = {a.name for a in plan}
    baselines = [a.name for a in plan if a.kind == SYNTHETIC and a.baseline]
    pairs: list[tuple[str, str, bool]] = []
    if REAL in names:
        pairs += [(a.name, REAL, a.kind == SYNTHETIC and not a.baseline)
                  for a in plan if a.name != REAL]
    for a in plan:
        test = not a.baseline
        if a.kind == SYNTHETIC:
            for base in ([DUPLICATE, PSEUDO, *baselines] if test else [DUPLICATE]):
                if base in names:
                    pairs.append((a.name, base, test))
        elif a.kind == CLASSIC_SYNTHETIC and CLASSIC in names:
            pairs.append((a.name, CLASSIC, test))
        elif a.kind == GATE:
            pairs += [(a.name, base, test and base == a.source) for base in (a.source, DUPLICATE) if base in names]
    return pairs
