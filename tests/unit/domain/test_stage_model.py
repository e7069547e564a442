from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from domain.config_file import ConfigFileError, format_key
from domain.stage_model import (
    FUNNEL_ORDER,
    LIFECYCLE_ORDER,
    SIDE_EXITS,
    Pipeline,
    PipelineStage,
    StageModel,
    load_stage_model,
    parse_stage_model,
)

Data = dict[str, Any]

# --- a tiny TOML writer, enough for stage model files -------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def to_toml(data: Data, path: tuple[str, ...] = ()) -> str:
    lines: list[str] = []
    for key, value in data.items():
        if not isinstance(value, dict) and not _is_table_array(value):
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in data.items():
        name = ".".join(_key(p) for p in (*path, key))
        if isinstance(value, dict):
            lines.append(f"\n[{name}]")
            lines.append(to_toml(value, (*path, key)))
        elif _is_table_array(value):
            for item in value:
                lines.append(f"\n[[{name}]]")
                lines.append(to_toml(item, (*path, key)))
    return "\n".join(lines)


# --- fixtures -------------------------------------------------------------------------------


def default_data() -> Data:
    text = (files("domain") / "default_stage_model.toml").read_text(encoding="utf-8")
    return copy.deepcopy(tomllib.loads(text))


@pytest.fixture
def write(tmp_path: Path) -> Callable[[Data], Path]:
    def _write(data: Data) -> Path:
        path = tmp_path / "model.toml"
        path.write_text(to_toml(data), encoding="utf-8")
        return path

    return _write


def stages(data: Data, pipeline: str = "default") -> list[Data]:
    result: list[Data] = data["pipelines"][pipeline]["stages"]
    return result


def load_error(path: Path) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as info:
        load_stage_model(path)
    return info.value


def assert_error(err: ConfigFileError, path: Path, key: str, *problem_parts: str) -> None:
    assert err.file == str(path)
    assert err.key == key
    for part in problem_parts:
        assert part in err.problem
    assert str(err) == f"{path}: {key}: {err.problem}"


# --- the shipped default ----------------------------------------------------------------------


def test_writer_round_trips_the_default_model() -> None:
    assert tomllib.loads(to_toml(default_data())) == default_data()


def test_default_model_loads_and_is_cached() -> None:
    model = load_stage_model()
    assert model is load_stage_model()
    assert model.version
    assert model.default_pipeline == "default"
    assert model.mql_acceptance_sla_hours == 48
    assert list(model.pipelines) == ["default", "renewal"]


def test_lifecycle_constants_and_mapping() -> None:
    assert LIFECYCLE_ORDER == ("new", "mql", "sal", "sql", "converted")
    assert SIDE_EXITS == ("recycled", "disqualified")
    model = load_stage_model()
    assert tuple(model.lifecycle) == LIFECYCLE_ORDER + SIDE_EXITS
    assert model.lifecycle["mql"].label
    expected = {
        "new": "awareness",
        "mql": "interest",
        "sal": "consideration",
        "sql": "consideration",
        "converted": "purchase",
        "recycled": "interest",
        "disqualified": "awareness",
    }
    for stage, funnel in expected.items():
        assert model.funnel_stage_of_lifecycle(stage) == funnel
    with pytest.raises(KeyError, match="unknown lifecycle stage"):
        model.funnel_stage_of_lifecycle("lost")


def test_default_pipeline_stages() -> None:
    pipeline = load_stage_model().pipeline()
    assert pipeline.name == "default"
    assert [(s.name, s.probability, s.stall_after_days, s.outcome) for s in pipeline.stages] == [
        ("qualification", 0.10, 14, "open"),
        ("needs_analysis", 0.20, 21, "open"),
        ("proposal_sent", 0.50, 14, "open"),
        ("negotiation", 0.70, 10, "open"),
        ("closed_won", 1.0, None, "won"),
        ("closed_lost", 0.0, None, "lost"),
    ]
    assert all(s.funnel in FUNNEL_ORDER for s in pipeline.stages)
    assert pipeline.first_stage.name == "qualification"
    assert [s.name for s in pipeline.open_stages] == [
        "qualification",
        "needs_analysis",
        "proposal_sent",
        "negotiation",
    ]
    assert pipeline.won_stage.is_won and pipeline.won_stage.name == "closed_won"
    assert pipeline.lost_stage.is_lost and pipeline.lost_stage.name == "closed_lost"
    assert pipeline.probability("negotiation") == 0.70
    assert pipeline.stage("proposal_sent").is_open


def test_unknown_stage_and_pipeline_raise_key_error() -> None:
    model = load_stage_model()
    with pytest.raises(KeyError, match='no stage "demo"'):
        model.pipeline().stage("demo")
    with pytest.raises(KeyError, match='unknown pipeline "enterprise"'):
        model.pipeline("enterprise")


def test_several_pipelines() -> None:
    model = load_stage_model()
    renewal = model.pipeline("renewal")
    assert renewal.name == "renewal"
    assert renewal.first_stage.name == "renewal_review"
    assert renewal.won_stage.name == "renewed"
    assert renewal.lost_stage.name == "churned"
    assert {s.funnel for s in renewal.stages} == {"loyalty"}
    assert model.pipeline("default") is model.pipeline()


# --- can_move --------------------------------------------------------------------------------


def test_can_move_without_transitions_allows_any_open_move() -> None:
    pipeline = load_stage_model().pipeline()
    assert pipeline.transitions is None
    names = [s.name for s in pipeline.open_stages]
    for a in names:
        for b in names:
            assert pipeline.can_move(a, b) == (a != b)
    assert pipeline.can_move("negotiation", "qualification")  # backwards


def test_can_move_never_involves_closed_stages() -> None:
    pipeline = load_stage_model().pipeline()
    assert not pipeline.can_move("negotiation", "closed_won")
    assert not pipeline.can_move("closed_lost", "qualification")
    with pytest.raises(KeyError):
        pipeline.can_move("qualification", "nowhere")


def test_can_move_with_transitions() -> None:
    renewal = load_stage_model().pipeline("renewal")
    assert renewal.can_move("renewal_review", "renewal_proposal")
    assert not renewal.can_move("renewal_proposal", "renewal_review")


def test_transitions_restrict_only_listed_moves(write: Callable[[Data], Path]) -> None:
    data = default_data()
    data["pipelines"]["default"]["transitions"] = {
        "qualification": ["needs_analysis"],
        "needs_analysis": ["proposal_sent", "qualification"],
    }
    pipeline = load_stage_model(write(data)).pipeline()
    assert pipeline.can_move("qualification", "needs_analysis")
    assert not pipeline.can_move("qualification", "negotiation")
    assert pipeline.can_move("needs_analysis", "qualification")
    assert not pipeline.can_move("negotiation", "proposal_sent")  # not listed: no moves


def test_models_validate_when_built_in_code() -> None:
    stage = PipelineStage(name="a", probability=0.5, stall_after_days=3, funnel="interest")
    won = PipelineStage(name="won", probability=1.0, funnel="purchase", outcome="won")
    lost = PipelineStage(name="lost", probability=0.0, funnel="purchase", outcome="lost")
    pipeline = Pipeline(name="p", stages=(stage, won, lost))
    assert pipeline.first_stage is stage
    with pytest.raises(ValidationError, match='exactly one stage with outcome "won"'):
        Pipeline(name="p", stages=(stage, won, won.model_copy(update={"name": "won2"}), lost))
    with pytest.raises(ValidationError, match=r"transitions\.a: unknown stage"):
        Pipeline(name="p", stages=(stage, won, lost), transitions={"a": ("b",)})
    model = load_stage_model()
    built = StageModel(
        version="x",
        lifecycle=model.lifecycle,
        mql_acceptance_sla_hours=24,
        pipelines={"p": pipeline},
        default_pipeline="p",
    )
    assert built.pipeline() is pipeline


# --- invalid files ----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    err = load_error(path)
    assert err.file == str(path)
    assert "not found" in str(err)


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "model.toml"
    path.write_text('version = "1"\ndefault_pipeline = "default"\n[lifecycle\n', encoding="utf-8")
    err = load_error(path)
    assert err.line == 3
    assert err.key == "line 3"
    assert str(err).startswith(f"{path}: line 3: TOML syntax error")


def test_syntax_error_at_end_of_document(tmp_path: Path) -> None:
    path = tmp_path / "model.toml"
    path.write_text('version = "1"\nstages = [1,\n', encoding="utf-8")
    err = load_error(path)
    assert err.line == 2
    assert "TOML syntax error" in err.problem


def test_missing_lifecycle_stage(write: Callable[[Data], Path]) -> None:
    data = default_data()
    del data["lifecycle"]["stages"]["sal"]
    path = write(data)
    assert_error(load_error(path), path, "lifecycle.stages", 'missing lifecycle stage "sal"')


def test_unknown_lifecycle_stage(write: Callable[[Data], Path]) -> None:
    data = default_data()
    data["lifecycle"]["stages"]["nurture"] = {"label": "Nurture", "funnel": "interest"}
    path = write(data)
    assert_error(load_error(path), path, "lifecycle.stages.nurture", "unknown lifecycle stage")


def test_probability_out_of_range(write: Callable[[Data], Path]) -> None:
    data = default_data()
    stages(data)[2]["probability"] = 1.5
    path = write(data)
    assert_error(
        load_error(path),
        path,
        "pipelines.default.stages[2].probability",
        "must be between 0 and 1",
    )


def test_two_won_stages(write: Callable[[Data], Path]) -> None:
    data = default_data()
    stages(data)[3]["outcome"] = "won"
    path = write(data)
    assert_error(
        load_error(path), path, "pipelines.default", 'needs exactly one stage with outcome "won"'
    )


def test_no_lost_stage(write: Callable[[Data], Path]) -> None:
    data = default_data()
    del stages(data)[5]
    path = write(data)
    assert_error(load_error(path), path, "pipelines.default", 'outcome "lost"')


def test_no_open_stage(write: Callable[[Data], Path]) -> None:
    data = default_data()
    del stages(data)[:4]
    path = write(data)
    assert_error(
        load_error(path), path, "pipelines.default", 'at least one stage with outcome "open"'
    )


def test_unknown_transition_target(write: Callable[[Data], Path]) -> None:
    data = default_data()
    data["pipelines"]["default"]["transitions"] = {"qualification": ["needs_analysis", "foo"]}
    path = write(data)
    assert_error(
        load_error(path), path, "pipelines.default.transitions.qualification", 'unknown stage "foo"'
    )


def test_unknown_transition_source(write: Callable[[Data], Path]) -> None:
    data = default_data()
    data["pipelines"]["default"]["transitions"] = {"foo": ["qualification"]}
    path = write(data)
    assert_error(load_error(path), path, "pipelines.default.transitions.foo", 'unknown stage "foo"')


def test_transition_to_closed_stage(write: Callable[[Data], Path]) -> None:
    data = default_data()
    data["pipelines"]["default"]["transitions"] = {"qualification": ["closed_won"]}
    path = write(data)
    assert_error(
        load_error(path),
        path,
        "pipelines.default.transitions.qualification",
        '"closed_won" is won, not open',
    )


def test_unknown_default_pipeline(write: Callable[[Data], Path]) -> None:
    data = default_data()
    data["default_pipeline"] = "enterprise"
    path = write(data)
    assert_error(load_error(path), path, "default_pipeline", 'unknown pipeline "enterprise"')


def test_unknown_funnel_stage(write: Callable[[Data], Path]) -> None:
    data = default_data()
    stages(data)[0]["funnel"] = "delight"
    path = write(data)
    assert_error(
        load_error(path), path, "pipelines.default.stages[0].funnel", "'delight'", "awareness"
    )


def test_unknown_lifecycle_funnel_stage(write: Callable[[Data], Path]) -> None:
    data = default_data()
    data["lifecycle"]["stages"]["mql"]["funnel"] = "hype"
    path = write(data)
    assert_error(load_error(path), path, "lifecycle.stages.mql.funnel", "'hype'")


def test_open_stage_needs_stall_threshold(write: Callable[[Data], Path]) -> None:
    data = default_data()
    del stages(data)[1]["stall_after_days"]
    path = write(data)
    assert_error(
        load_error(path),
        path,
        "pipelines.default.stages[1].stall_after_days",
        "required for open stages",
    )


def test_stall_threshold_must_be_a_positive_integer(write: Callable[[Data], Path]) -> None:
    data = default_data()
    stages(data)[1]["stall_after_days"] = 0
    path = write(data)
    assert_error(
        load_error(path), path, "pipelines.default.stages[1].stall_after_days", "at least 1"
    )
    stages(data)[1]["stall_after_days"] = 2.5
    assert_error(
        load_error(write(data)), path, "pipelines.default.stages[1].stall_after_days", "integer"
    )


def test_duplicate_stage_name(write: Callable[[Data], Path]) -> None:
    data = default_data()
    stages(data)[2]["name"] = "qualification"
    path = write(data)
    assert_error(load_error(path), path, "pipelines.default.stages[2].name", "duplicate stage name")


def test_unknown_keys_are_rejected(write: Callable[[Data], Path]) -> None:
    data = default_data()
    stages(data)[0]["stall_after_day"] = 3
    path = write(data)
    assert_error(
        load_error(path), path, "pipelines.default.stages[0].stall_after_day", "unknown key"
    )
    data = default_data()
    data["lifecycle"]["mql_sla_hours"] = 3
    assert_error(load_error(write(data)), path, "lifecycle.mql_sla_hours", "unknown key")


def test_missing_required_keys(write: Callable[[Data], Path]) -> None:
    data = default_data()
    del data["lifecycle"]["mql_acceptance_sla_hours"]
    path = write(data)
    assert_error(load_error(path), path, "lifecycle.mql_acceptance_sla_hours", "missing")
    data = default_data()
    del data["pipelines"]
    assert_error(load_error(write(data)), path, "pipelines", "missing")


def test_sla_must_be_positive(write: Callable[[Data], Path]) -> None:
    data = default_data()
    data["lifecycle"]["mql_acceptance_sla_hours"] = 0
    path = write(data)
    assert_error(load_error(path), path, "lifecycle.mql_acceptance_sla_hours", "greater than 0")


def test_bad_stage_name(write: Callable[[Data], Path]) -> None:
    data = default_data()
    stages(data)[0]["name"] = "Proposal Sent"
    path = write(data)
    assert_error(load_error(path), path, "pipelines.default.stages[0].name", "lowercase")


def test_parse_names_the_source_without_a_file() -> None:
    data = default_data()
    data["default_pipeline"] = "x"
    with pytest.raises(ConfigFileError, match=r"^org\.toml: default_pipeline: "):
        parse_stage_model(data, "org.toml")


def test_format_key() -> None:
    assert format_key(("pipelines", "default", "stages", 2, "probability")) == (
        "pipelines.default.stages[2].probability"
    )
    assert format_key(("pipelines", "my pipe")) == 'pipelines."my pipe"'
