"""Lead scoring: fit (ideal customer profile rules) plus engagement (decaying, capped points).

Deterministic: a score depends only on the rules, the lead's attributes, its engagements and
the `as_of` moment passed in, never on the wall clock.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    AliasPath,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.config_file import (
    ConfigFileError,
    KeyedValueError,
    check_table_keys,
    config_error_from_validation,
    load_toml,
)

EngagementKind = Literal[
    "page_view",
    "pricing_page_view",
    "email_open",
    "email_click",
    "form_submit",
    "content_download",
    "webinar_attended",
    "demo_request",
    "unsubscribe",
]
ENGAGEMENT_KINDS: tuple[str, ...] = get_args(EngagementKind)

DEFAULT_RULES_FILE = "default_scoring.toml"

FitOp = Literal["in", "contains_any", "gte", "lte", "between"]

_DAY = timedelta(days=1)
_OPERANDS: dict[str, tuple[str, ...]] = {
    "in": ("values",),
    "contains_any": ("values",),
    "gte": ("value",),
    "lte": ("value",),
    "between": ("min", "max"),
}
_SUFFIXES = (("bn", 1e9), ("mm", 1e6), ("k", 1e3), ("m", 1e6), ("b", 1e9))
_NUMBER_NOISE = re.compile(r"[\s,_$€£]")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class FitRule(_Frozen):
    """One ICP rule: `points` when `attribute` matches.

    Ops: `in` (equals one of `values`, case-insensitive), `contains_any` (contains one of
    `values` as a whole word or phrase, case-insensitive), `gte` / `lte` (number vs
    `value`), `between` (`min` <= number <= `max`). List-valued attributes match when any
    element matches.
    """

    attribute: str = Field(min_length=1)
    op: FitOp
    values: tuple[str, ...] | None = None
    value: float | None = Field(default=None, strict=True)
    min: float | None = Field(default=None, strict=True)
    max: float | None = Field(default=None, strict=True)
    points: float = Field(strict=True)
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _operands_match_op(self) -> FitRule:
        needed = _OPERANDS[self.op]
        for operand in needed:
            if getattr(self, operand) is None:
                raise KeyedValueError((operand,), f'required with op "{self.op}"')
        for operand in ("values", "value", "min", "max"):
            if operand not in needed and getattr(self, operand) is not None:
                raise KeyedValueError((operand,), f'not used with op "{self.op}"')
        if self.values is not None and not self.values:
            raise KeyedValueError(("values",), "must not be empty")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise KeyedValueError(("max",), "must not be less than min")
        return self

    def matcher(self) -> Callable[[object], bool]:
        """A predicate on the attribute's value, with everything it needs precomputed."""
        if self.op in ("in", "contains_any"):
            needles = tuple(v.strip().lower() for v in self.values or ())
            if self.op == "contains_any":
                words = re.compile(r"\b(?:" + "|".join(map(re.escape, needles)) + r")\b")
                return lambda raw: any(words.search(text) for text in _texts(raw))
            needle_set = frozenset(needles)
            return lambda raw: any(text in needle_set for text in _texts(raw))
        low, high = {
            "gte": (self.value, None),
            "lte": (None, self.value),
            "between": (self.min, self.max),
        }[self.op]
        return _within(-math.inf if low is None else low, math.inf if high is None else high)

    def matches(self, raw: object) -> bool:
        return self.matcher()(raw)


@dataclass(frozen=True, slots=True)
class _CompiledFitRule:
    attribute: str
    points: float
    reason: str
    test: Callable[[object], bool] = field(compare=False)


def _compile(fit_rules: tuple[FitRule, ...]) -> tuple[_CompiledFitRule, ...]:
    return tuple(
        _CompiledFitRule(r.attribute, r.points, f"{r.reason} ({_signed(r.points)})", r.matcher())
        for r in fit_rules
    )


class KindRule(_Frozen):
    """Points per engagement of one kind. `cap` bounds the kind's decayed sum: a ceiling of
    `cap` for positive points, a floor of `-cap` for negative points."""

    points: float = Field(strict=True)
    cap: float = Field(strict=True, ge=0)


class ScoringRules(_Frozen):
    """Versioned scoring rules. In the file, `fit_rules` is `[[fit.rules]]`, and
    `half_life_days` and `kinds` live under `[engagement]`."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    version: str = Field(min_length=1)
    mql_threshold: float = Field(strict=True, gt=0)
    fit_rules: tuple[FitRule, ...] = Field(default=(), validation_alias=AliasPath("fit", "rules"))
    half_life_days: float = Field(
        strict=True, gt=0, validation_alias=AliasPath("engagement", "half_life_days")
    )
    kinds: Mapping[str, KindRule] = Field(validation_alias=AliasPath("engagement", "kinds"))

    # (the fit_rules compiled, compiled form); see `_compiled_fit`.
    _fit: tuple[tuple[FitRule, ...], tuple[_CompiledFitRule, ...]] = PrivateAttr(default=((), ()))

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: Mapping[str, KindRule]) -> Mapping[str, KindRule]:
        for kind in value:
            if kind not in ENGAGEMENT_KINDS:
                raise KeyedValueError(
                    (kind,),
                    f'unknown engagement kind "{kind}" (kinds: {", ".join(ENGAGEMENT_KINDS)})',
                )
        for kind in ENGAGEMENT_KINDS:
            if kind not in value:
                raise KeyedValueError((), f'missing engagement kind "{kind}"')
        return {kind: value[kind] for kind in ENGAGEMENT_KINDS}

    def model_post_init(self, context: Any, /) -> None:
        self._fit = (self.fit_rules, _compile(self.fit_rules))

    def _compiled_fit(self) -> tuple[_CompiledFitRule, ...]:
        source, compiled = self._fit
        if source is not self.fit_rules:  # model_copy(update=...) skips model_post_init
            compiled = _compile(self.fit_rules)
            self._fit = (self.fit_rules, compiled)
        return compiled


@dataclass(frozen=True, slots=True)
class Engagement:
    kind: str
    occurred_at: datetime


class ScoreBreakdown(BaseModel):
    model_config = ConfigDict(frozen=True)

    fit: float
    engagement: float
    total: float
    rule_version: str
    reasons: tuple[str, ...]


def fit_score(rules: ScoringRules, attributes: Mapping[str, object]) -> tuple[float, list[str]]:
    """Sum of the points of every matching fit rule; missing attributes score nothing."""
    total = 0.0
    reasons: list[str] = []
    for rule in rules._compiled_fit():
        raw = attributes.get(rule.attribute)
        if raw is not None and rule.test(raw):
            total += rule.points
            reasons.append(rule.reason)
    return round(total, 2), reasons


def engagement_score(
    rules: ScoringRules, engagements: Iterable[Engagement], as_of: datetime
) -> tuple[float, list[str]]:
    """Each engagement is worth `points * 0.5 ** (age_days / half_life_days)`; sums are capped
    per kind. Engagements after `as_of` are ignored; kinds the rules do not know score 0."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    half_life = rules.half_life_days
    for engagement in engagements:
        if engagement.occurred_at > as_of:
            continue
        kind = engagement.kind
        counts[kind] = counts.get(kind, 0) + 1
        rule = rules.kinds.get(kind)
        if rule is not None:
            age_days = (as_of - engagement.occurred_at) / _DAY
            sums[kind] = sums.get(kind, 0.0) + rule.points * 0.5 ** (age_days / half_life)
    return capped_engagement(rules, sums, counts)


def capped_engagement(
    rules: ScoringRules, sums: Mapping[str, float], counts: Mapping[str, int]
) -> tuple[float, list[str]]:
    """The engagement score of decayed point sums and counts per kind: each sum capped,
    with one reason per kind (``kind xN``)."""
    total = 0.0
    reasons: list[str] = []
    for kind in sorted(counts, key=_kind_order):
        rule = rules.kinds.get(kind)
        if rule is None:
            reasons.append(f"{kind} x{counts[kind]} (unknown kind, not scored)")
            continue
        capped = max(-rule.cap, min(rule.cap, sums.get(kind, 0.0)))
        total += capped
        bound = f"floor {_plain(-rule.cap)}" if rule.points < 0 else f"cap {_plain(rule.cap)}"
        reasons.append(f"{kind} x{counts[kind]} ({_signed(capped)}, {bound})")
    return round(total, 2), reasons


def score_lead(
    rules: ScoringRules,
    attributes: Mapping[str, object],
    engagements: Iterable[Engagement],
    as_of: datetime,
) -> ScoreBreakdown:
    return breakdown(rules, attributes, engagement_score(rules, engagements, as_of))


def breakdown(
    rules: ScoringRules,
    attributes: Mapping[str, object],
    engagement: tuple[float, list[str]],
) -> ScoreBreakdown:
    """The full score: the attributes' fit plus an engagement score and its reasons."""
    fit, fit_reasons = fit_score(rules, attributes)
    points, engagement_reasons = engagement
    return ScoreBreakdown(
        fit=fit,
        engagement=points,
        total=round(fit + points, 2),
        rule_version=rules.version,
        reasons=(*fit_reasons, *engagement_reasons),
    )


def parse_scoring_rules(data: Mapping[str, Any], source: str) -> ScoringRules:
    """Validate the content of a scoring rules file; `source` names the file in errors."""
    check_table_keys(source, data, "fit", ("rules",))
    check_table_keys(source, data, "engagement", ("half_life_days", "kinds"))
    try:
        return ScoringRules.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise config_error_from_validation(source, exc) from None


def load_scoring_rules(path: Path | None = None) -> ScoringRules:
    """Load a scoring rules file, or the shipped default when `path` is None."""
    if path is None:
        return _default_scoring_rules()
    return parse_scoring_rules(load_toml(path), str(path))


@functools.cache
def _default_scoring_rules() -> ScoringRules:
    resource = files("domain") / DEFAULT_RULES_FILE
    return parse_scoring_rules(load_toml(resource), f"domain/{DEFAULT_RULES_FILE}")


def _kind_order(kind: str) -> tuple[int, str]:
    known = kind in ENGAGEMENT_KINDS
    return (ENGAGEMENT_KINDS.index(kind) if known else len(ENGAGEMENT_KINDS), kind)


def _within(low: float, high: float) -> Callable[[object], bool]:
    def test(raw: object) -> bool:
        number = parse_number(raw)
        return number is not None and low <= number <= high

    return test


def _texts(raw: object) -> Iterable[str]:
    if isinstance(raw, str):
        return (raw.strip().lower(),)
    items = raw if isinstance(raw, list | tuple | set | frozenset) else (raw,)
    return [str(item).strip().lower() for item in items if item is not None]


def parse_number(raw: object) -> float | None:
    """Lenient numeric coercion: 250, "250", "1,200", "$5M", "10k", "10000+", "51-200"
    (a range counts as its midpoint). Anything else is not a number."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float | Decimal):
        try:
            number = float(raw)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    if not isinstance(raw, str):
        return None
    text = _NUMBER_NOISE.sub("", raw.lower()).removesuffix("+")
    single = _scaled(text)
    if single is not None:
        return single
    low, sep, high = text.partition("-")
    if not sep or not low:
        return None
    bounds = _scaled(low), _scaled(high)
    if bounds[0] is None or bounds[1] is None:
        return None
    return (bounds[0] + bounds[1]) / 2


def _scaled(text: str) -> float | None:
    factor = 1.0
    if text[-1:].isalpha():
        for suffix, multiplier in _SUFFIXES:
            if text.endswith(suffix):
                text, factor = text.removesuffix(suffix), multiplier
                break
    try:
        number = float(text) * factor
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _plain(number: float) -> str:
    text = f"{number:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _signed(number: float) -> str:
    text = _plain(number)
    return text if text.startswith("-") else f"+{text}"


__all__ = [
    "ENGAGEMENT_KINDS",
    "ConfigFileError",
    "Engagement",
    "FitOp",
    "FitRule",
    "KindRule",
    "ScoreBreakdown",
    "ScoringRules",
    "breakdown",
    "capped_engagement",
    "engagement_score",
    "fit_score",
    "load_scoring_rules",
    "parse_scoring_rules",
    "score_lead",
]
