"""config.json's inference section and the rule that resolves a model dir's stored settings
against the command line (config_flags.resolve_settings)."""

import dataclasses
import json

import pytest
from absl import flags

from decompnet_tf.config import (
    Config,
    InferenceConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
)
from decompnet_tf.config_flags import (
    define_flags,
    describe_settings,
    from_flags,
    resolve_settings,
)

STORED = InferenceConfig(stop_threshold=0.7, mask_threshold=0.3, segmentation_delta=0.05,
                         box_source="component")


def test_inference_settings_round_trip_and_an_older_file_loads_with_defaults():
    config = Config(inference=STORED)
    assert json.loads(config.to_json())["inference"]["box_source"] == "component"
    assert Config.from_json(config.to_json()) == config
    old = json.loads(config.to_json())
    del old["inference"]  # A config.json written before the section existed.
    assert Config.from_json(json.dumps(old)).inference == InferenceConfig()
    bad = {**json.loads(config.to_json()), "inference": {"stop_threshhold": 0.5}}
    with pytest.raises(ValueError, match="unknown InferenceConfig fields"):
        Config.from_json(json.dumps(bad))


def test_a_baseline_dir_written_before_box_regression_loads_without_it():
    # Its classifier has no box head: loading it with the new default would fail to read the
    # weights. A file that names the field keeps its value either way.
    raw = json.loads(Config(kind="baseline").to_json())
    assert raw["baseline"]["box_regression"] is True
    del raw["baseline"]["box_regression"]
    assert Config.from_json(json.dumps(raw)).baseline.box_regression is False
    raw["baseline"]["box_regression"] = True
    assert Config.from_json(json.dumps(raw)).baseline.box_regression is True


def _flags(*argv, exclude=()):
    fv = flags.FlagValues()
    define_flags(InferenceConfig, flag_values=fv, exclude=exclude)
    fv(["prog", *argv])
    return fv


def test_stored_settings_unless_the_flag_is_given():
    settings, sources = resolve_settings(STORED, _flags())
    assert settings == STORED and set(sources.values()) == {"stored"}
    # Given on the command line, a flag wins, even at its default value (0.5, 'regressor').
    settings, sources = resolve_settings(
        STORED, _flags("--stop_threshold=0.5", "--box_source=regressor"))
    assert settings == dataclasses.replace(STORED, stop_threshold=0.5, box_source="regressor")
    assert sources == {"stop_threshold": "--stop_threshold", "mask_threshold": "stored",
                       "segmentation_delta": "stored", "box_source": "--box_source"}
    line = describe_settings(settings, sources)
    assert line == ("inference settings: stop_threshold=0.5 (--stop_threshold), "
                    "mask_threshold=0.3 (stored), segmentation_delta=0.05 (stored), "
                    "box_source=regressor (--box_source)")
    # A field the script defines no flag for keeps the stored value (export.py's mask).
    settings, _ = resolve_settings(STORED, _flags(exclude=("mask_threshold",)))
    assert settings.mask_threshold == 0.3
    assert "mask_threshold" not in describe_settings(settings, sources,
                                                     exclude=("mask_threshold",))


def test_with_inference_replaces_only_the_inference_section(tmp_path):
    from decompnet_tf.model_io import CONFIG_FILE, Run

    config = Config(train=TrainConfig(model_dir=str(tmp_path), stages=(1, 2)))
    (tmp_path / CONFIG_FILE).write_text(config.to_json())
    Run.open(str(tmp_path)).with_inference(STORED)
    assert Run.open(str(tmp_path)).config == dataclasses.replace(config, inference=STORED)
    assert [p.name for p in tmp_path.iterdir()] == [CONFIG_FILE]  # No temporary file left.
    with pytest.raises(FileNotFoundError, match="holds no trained model"):
        Run.open(str(tmp_path / "nowhere")).with_inference(STORED)


@pytest.mark.parametrize("build, message", [
    (lambda: ModelConfig(instance_recurrence="gru"), "ModelConfig.instance_recurrence"),
    (lambda: LossConfig(matching="greedy"), "LossConfig.matching"),
    (lambda: TrainConfig(stages=(1, 4)), "TrainConfig.stages must be <= 3"),
    (lambda: TrainConfig(momentum=1.5), "TrainConfig.momentum must be <= 1.0"),
    (lambda: InferenceConfig(mask_threshold=-0.1), "InferenceConfig.mask_threshold"),
    (lambda: Config.from_json(json.dumps({"train": {"strategy": "horovod"}})),
     "TrainConfig.strategy"),
])
def test_a_dataclass_built_in_python_is_checked_against_its_settings(build, message):
    """The choices and bounds the flags enforce hold for a config built without flags too."""
    with pytest.raises(ValueError, match=message):
        build()


DEPRECATION = "warning: --solver is deprecated and goes in the next version; use --matching_solver"


def _train_flags(*argv):
    fv = flags.FlagValues()
    define_flags(TrainConfig, flag_values=fv)
    fv(["prog", *argv])
    return fv


@pytest.fixture
def solver_alias(monkeypatch):
    """--solver as a deprecated alias of --matching_solver (config.FLAG_ALIASES holds the
    real renamed flags of a version; emptied at each version bump)."""
    from decompnet_tf import config

    monkeypatch.setattr(config, "FLAG_ALIASES", {"TrainConfig": {"solver": "matching_solver"}})


def test_a_renamed_flag_parses_for_one_version_with_a_warning(capsys, solver_alias):
    assert "--matching_solver" in _train_flags()["solver"].help
    assert from_flags(TrainConfig, _train_flags("--solver=graph")).matching_solver == "graph"
    assert capsys.readouterr().err.splitlines() == [DEPRECATION]
    for argv, solver in ((("--matching_solver=graph",), "graph"), ((), "auto")):
        assert from_flags(TrainConfig, _train_flags(*argv)).matching_solver == solver
        assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="give --matching_solver only"):
        from_flags(TrainConfig, _train_flags("--solver=graph", "--matching_solver=scipy"))


def test_the_flags_of_0_1_0_are_gone_but_its_config_json_still_loads():
    for old in ("--matcher=graph", "--instance_input=truth"):
        with pytest.raises(flags.UnrecognizedFlagError):
            _train_flags(old)
    raw = json.loads(Config(train=TrainConfig(matching_solver="graph",
                                              category_source="truth")).to_json())
    raw["train"]["matcher"] = raw["train"].pop("matching_solver")
    raw["train"]["instance_input"] = raw["train"].pop("category_source")
    train = Config.from_json(json.dumps(raw)).train
    assert (train.matching_solver, train.category_source) == ("graph", "truth")


def test_category_maps_is_the_former_name_of_category_source(capsys):
    got = from_flags(TrainConfig, _train_flags("--category_maps=truth")).category_source
    assert got == "truth"
    assert capsys.readouterr().err.splitlines() == [
        "warning: --category_maps is deprecated and goes in the next version; use "
        "--category_source"]
