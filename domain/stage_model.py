"""The stage model: lifecycle and pipeline stages as each organisation defines them.

Lead lifecycle stages are fixed identities (the lead aggregate depends on them); the file only
labels them and maps them onto the funnel. Pipelines (deal stages) are free-form: ordered stages
with a win probability, a stall threshold, a funnel stage and an outcome (open, won or lost).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AliasPath,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
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

FunnelStage = Literal["awareness", "interest", "consideration", "purchase", "loyalty"]
Outcome = Literal["open", "won", "lost"]

FUNNEL_ORDER: tuple[FunnelStage, ...] = get_args(FunnelStage)
LIFECYCLE_ORDER: tuple[str, ...] = ("new", "mql", "sal", "sql", "converted")
SIDE_EXITS: tuple[str, ...] = ("recycled", "disqualified")
LIFECYCLE_STAGES: tuple[str, ...] = LIFECYCLE_ORDER + SIDE_EXITS

DEFAULT_MODEL_FILE = "default_stage_model.toml"

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _check_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f'"{value}": names must be lowercase letters, digits and underscores, '
            "starting with a letter"
        )
    return value


Name = Annotated[str, AfterValidator(_check_name)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class PipelineStage(_Frozen):
    name: Name
    probability: float = Field(strict=True)
    stall_after_days: int | None = Field(default=None, strict=True)
    funnel: FunnelStage
    outcome: Outcome = "open"

    @field_validator("probability")
    @classmethod
    def _probability_in_range(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError("must be between 0 and 1")
        return value

    @field_validator("stall_after_days")
    @classmethod
    def _stall_positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("must be at least 1 (days)")
        return value

    @model_validator(mode="after")
    def _open_stages_can_stall(self) -> PipelineStage:
        if self.is_open and self.stall_after_days is None:
            raise KeyedValueError(("stall_after_days",), "required for open stages")
        return self

    @property
    def is_open(self) -> bool:
        return self.outcome == "open"

    @property
    def is_won(self) -> bool:
        return self.outcome == "won"

    @property
    def is_lost(self) -> bool:
        return self.outcome == "lost"


class Pipeline(_Frozen):
    """Ordered deal stages. `transitions` (open stage -> open stages it may move to) restricts
    open-to-open moves; None means any open stage may move to any other, backwards too.
    Winning, losing and reopening are governed by the deal, not by `transitions`."""

    name: Name
    stages: tuple[PipelineStage, ...]
    transitions: Mapping[str, tuple[str, ...]] | None = None

    @field_validator("stages")
    @classmethod
    def _unique_names(cls, stages: tuple[PipelineStage, ...]) -> tuple[PipelineStage, ...]:
        seen: set[str] = set()
        for index, stage in enumerate(stages):
            if stage.name in seen:
                raise KeyedValueError((index, "name"), f'duplicate stage name "{stage.name}"')
            seen.add(stage.name)
        return stages

    @model_validator(mode="after")
    def _check_outcomes(self) -> Pipeline:
        for outcome in ("won", "lost"):
            if sum(1 for s in self.stages if s.outcome == outcome) != 1:
                raise KeyedValueError((), f'needs exactly one stage with outcome "{outcome}"')
        if not any(s.is_open for s in self.stages):
            raise KeyedValueError((), 'needs at least one stage with outcome "open"')
        return self

    @model_validator(mode="after")
    def _check_transitions(self) -> Pipeline:
        if self.transitions is None:
            return self
        outcomes = {s.name: s.outcome for s in self.stages}
        for source, targets in self.transitions.items():
            for name in (source, *targets):
                if name not in outcomes:
                    raise KeyedValueError(("transitions", source), f'unknown stage "{name}"')
                if outcomes[name] != "open":
                    raise KeyedValueError(
                        ("transitions", source),
                        f'"{name}" is {outcomes[name]}, not open (transitions list moves between '
                        "open stages; winning and losing are always allowed)",
                    )
            if source in targets:
                raise KeyedValueError(("transitions", source), "a stage cannot move to itself")
        return self

    def stage(self, name: str) -> PipelineStage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        known = ", ".join(s.name for s in self.stages)
        raise KeyError(f'pipeline "{self.name}" has no stage "{name}" (stages: {known})')

    @property
    def open_stages(self) -> tuple[PipelineStage, ...]:
        return tuple(s for s in self.stages if s.is_open)

    @property
    def won_stage(self) -> PipelineStage:
        return next(s for s in self.stages if s.is_won)

    @property
    def lost_stage(self) -> PipelineStage:
        return next(s for s in self.stages if s.is_lost)

    @property
    def first_stage(self) -> PipelineStage:
        return next(s for s in self.stages if s.is_open)

    def can_move(self, from_stage: str, to_stage: str) -> bool:
        """Whether an open deal may move between these two different open stages.

        False when either stage is closed or both are the same; KeyError for unknown stages.
        """
        source, target = self.stage(from_stage), self.stage(to_stage)
        if not (source.is_open and target.is_open) or source is target:
            return False
        return self.transitions is None or to_stage in self.transitions.get(from_stage, ())

    def probability(self, name: str) -> float:
        return self.stage(name).probability


class LifecycleStageDef(_Frozen):
    name: str
    label: str = Field(min_length=1)
    funnel: FunnelStage


def _with_names(value: Any) -> Any:
    """`{key: {...}}` -> `{key: {"name": key, ...}}`: tables are named by their key."""
    if not isinstance(value, Mapping):
        return value
    return {
        key: {"name": key, **entry} if isinstance(entry, Mapping) else entry
        for key, entry in value.items()
    }


def _check_keys_match_names(value: Mapping[str, Any]) -> None:
    for key, entry in value.items():
        if entry.name != key:
            raise KeyedValueError((key, "name"), f'"{entry.name}" does not match its key "{key}"')


class StageModel(_Frozen):
    """A whole stage model. In the file, `lifecycle` and `mql_acceptance_sla_hours` live under
    `[lifecycle]` as `stages.<name>` and `mql_acceptance_sla_hours`."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    version: str = Field(min_length=1)
    lifecycle: Mapping[str, LifecycleStageDef] = Field(
        validation_alias=AliasPath("lifecycle", "stages")
    )
    mql_acceptance_sla_hours: float = Field(
        validation_alias=AliasPath("lifecycle", "mql_acceptance_sla_hours"), gt=0
    )
    pipelines: Mapping[str, Pipeline] = Field(min_length=1)
    default_pipeline: str = "default"

    @field_validator("lifecycle", "pipelines", mode="before")
    @classmethod
    def _name_tables(cls, value: Any) -> Any:
        return _with_names(value)

    @field_validator("lifecycle")
    @classmethod
    def _fixed_lifecycle(
        cls, value: Mapping[str, LifecycleStageDef]
    ) -> Mapping[str, LifecycleStageDef]:
        _check_keys_match_names(value)
        for key in value:
            if key not in LIFECYCLE_STAGES:
                raise KeyedValueError(
                    (key,),
                    f'unknown lifecycle stage "{key}" (lifecycle stages are fixed: '
                    f"{', '.join(LIFECYCLE_STAGES)})",
                )
        for name in LIFECYCLE_STAGES:
            if name not in value:
                raise KeyedValueError((), f'missing lifecycle stage "{name}"')
        return {name: value[name] for name in LIFECYCLE_STAGES}

    @field_validator("pipelines")
    @classmethod
    def _pipeline_keys(cls, value: Mapping[str, Pipeline]) -> Mapping[str, Pipeline]:
        _check_keys_match_names(value)
        return value

    @field_validator("default_pipeline")
    @classmethod
    def _default_exists(cls, value: str, info: ValidationInfo) -> str:
        pipelines = info.data.get("pipelines")
        if pipelines is not None and value not in pipelines:
            known = ", ".join(pipelines)
            raise ValueError(f'unknown pipeline "{value}" (pipelines: {known})')
        return value

    def pipeline(self, name: str | None = None) -> Pipeline:
        """The named pipeline, or the default one when `name` is None."""
        key = self.default_pipeline if name is None else name
        try:
            return self.pipelines[key]
        except KeyError:
            known = ", ".join(self.pipelines)
            raise KeyError(f'unknown pipeline "{key}" (pipelines: {known})') from None

    def funnel_stage_of_lifecycle(self, stage: str) -> FunnelStage:
        try:
            return self.lifecycle[stage].funnel
        except KeyError:
            raise KeyError(
                f'unknown lifecycle stage "{stage}" (stages: {", ".join(LIFECYCLE_STAGES)})'
            ) from None


def parse_stage_model(data: Mapping[str, Any], source: str) -> StageModel:
    """Validate the content of a stage model file; `source` names the file in errors."""
    check_table_keys(source, data, "lifecycle", ("mql_acceptance_sla_hours", "stages"))
    try:
        return StageModel.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise config_error_from_validation(source, exc) from None


def load_stage_model(path: Path | None = None) -> StageModel:
    """Load a stage model file, or the shipped default when `path` is None."""
    if path is None:
        return _default_stage_model()
    return parse_stage_model(load_toml(path), str(path))


@functools.cache
def _default_stage_model() -> StageModel:
    resource = files("domain") / DEFAULT_MODEL_FILE
    return parse_stage_model(load_toml(resource), f"domain/{DEFAULT_MODEL_FILE}")


__all__ = [
    "FUNNEL_ORDER",
    "LIFECYCLE_ORDER",
    "LIFECYCLE_STAGES",
    "SIDE_EXITS",
    "ConfigFileError",
    "FunnelStage",
    "LifecycleStageDef",
    "Outcome",
    "Pipeline",
    "PipelineStage",
    "StageModel",
    "load_stage_model",
    "parse_stage_model",
]
