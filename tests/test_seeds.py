"""experiments/seeds.py: a training command at several seeds, each run evaluated, and the
spread of every metric; resumable."""

import json
import os
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, TINY_FLAGS, run_script

sys.path.insert(0, os.path.join(ROOT, "experiments"))
import seeds  # noqa: E402


def _metrics(ap, counting, windows=0):
    """A metrics.json as evaluate.py writes it, reduced to what seeds.py reads."""
    det = {str(i): {"ap_voc": a, "recall_at_precision_0.84": a / 2} for i, a in enumerate(ap)}
    return {"detection": {"iou_0.5": det}, "counting": {"accuracy": counting},
            "breakdown": {"ap50_by_size": {"<14": {"ap_voc_mean": ap[0] / 3}}},
            "speed": {"ms_per_image": 2.0}, "model": {"windows_per_image": windows}}


def test_summary_gives_mean_range_and_sample_std_per_metric():
    runs = {"seed0": seeds.metrics_of(_metrics([0.5, 0.6], 0.7), ["3", "6"]),
            "seed1": seeds.metrics_of(_metrics([0.7, 0.6], 0.5), ["3", "6"]),
            "seed2": seeds.metrics_of(_metrics([0.6, 0.9], 0.6), ["3", "6"])}
    assert runs["seed0"]["AP50 mean"] == pytest.approx(0.55)
    summary = seeds.summarize(runs)
    ap3 = summary["AP50 '3'"]
    assert (ap3["mean"], ap3["min"], ap3["max"], ap3["n"]) == (pytest.approx(0.6), 0.5, 0.7, 3)
    assert ap3["std"] == pytest.approx(np.std([0.5, 0.7, 0.6], ddof=1))
    assert summary["counting"]["std"] == pytest.approx(0.1)
    table = seeds.markdown(runs, summary)
    assert "| AP50 '3' | 0.600 | 0.500-0.700 | 0.200 | 0.100 | 0.500 | 0.700 | 0.600 |" in table
    # The sliding-window baseline does not count: no counting row for it.
    assert "counting" not in seeds.metrics_of(_metrics([0.5], 0.0, windows=1000))


def test_run_names_cross_seeds_with_onednn():
    assert seeds.run_names([0, 1], []) == [("seed0", 0, None), ("seed1", 1, None)]
    assert [n for n, *_ in seeds.run_names([2], ["0", "1"])] == ["seed2_onednn0",
                                                                  "seed2_onednn1"]


@pytest.mark.slow(60)
def test_two_seeds_train_evaluate_summarize_and_a_rerun_skips(small_data_dir, tmp_path):
    args = ("--name=tiny", f"--out={tmp_path}", "--seeds=0,1",
            "--eval=val=--split=validation --max_images=20 --num_sheets=0", "--",
            f"--data_dir={small_data_dir}", *TINY_FLAGS, "--stages=1,2", "--epochs=1,1",
            "--learning_rates=0.01,0.01")
    done = run_script("experiments/seeds.py", *args)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "tiny" / "summary_val.json").read_text())
    assert set(report["runs"]) == {"seed0", "seed1"}
    for run in ("seed0", "seed1"):  # Each run is its own model dir, trained at its seed.
        config = json.loads((tmp_path / "tiny" / run / "config.json").read_text())
        assert config["train"]["seed"] == int(run[-1])
    ap = [report["runs"][r]["AP50 '3'"] for r in ("seed0", "seed1")]
    assert report["summary"]["AP50 '3'"]["mean"] == pytest.approx(np.mean(ap))
    assert report["summary"]["AP50 '3'"]["std"] == pytest.approx(np.std(ap, ddof=1))
    assert "counting" in report["summary"] and "AP50 <14 px" in report["summary"]
    assert (tmp_path / "tiny" / "summary_val.md").read_text().startswith("| metric | mean |")
    again = run_script("experiments/seeds.py", *args)
    assert again.returncode == 0 and again.stdout.count("evaluated already, skipped") == 2
    assert json.loads((tmp_path / "tiny" / "summary_val.json").read_text()) == report
    # A new evaluation of a finished run evaluates only it: the first one is not read again.
    first = (tmp_path / "tiny" / "seed0" / "eval_val" / "metrics.json").stat().st_mtime_ns
    more = run_script("experiments/seeds.py", *args[:2], "--seeds=0", *args[3:4],
                      "--eval=val5=--split=validation --max_images=5 --num_sheets=0", *args[4:])
    assert more.returncode == 0, more.stdout[-2000:] + more.stderr[-2000:]
    assert (tmp_path / "tiny" / "seed0" / "eval_val5" / "metrics.json").exists()
    assert (tmp_path / "tiny" / "seed0" / "eval_val" / "metrics.json").stat().st_mtime_ns == first


def test_refuses_a_seed_or_model_dir_in_the_training_flags(tmp_path):
    done = run_script("experiments/seeds.py", "--name=x", f"--out={tmp_path}", "--",
                      "--seed=3")
    assert done.returncode != 0 and "give --seeds" in done.stderr


def test_arms_calls_a_difference_beyond_the_spread_only_when_it_exceeds_both_ranges(tmp_path):
    import arms

    def summary(name, values):
        runs = {f"seed{i}": {"AP50 mean": v} for i, v in enumerate(values)}
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary_e.json").write_text(
            json.dumps({"summary": seeds.summarize(runs)}))
        return str(tmp_path / name)

    base = summary("base", [0.50, 0.52, 0.54])  # range 0.04
    near = summary("near", [0.53, 0.55, 0.56])  # +0.027: within 0.04
    far = summary("far", [0.60, 0.61, 0.62])  # +0.09: beyond 0.04
    # One seed collapsed: a range of 0.45, yet every seed below every base seed, by more than
    # the base's own range.
    collapsed = summary("collapsed", [0.05, 0.40, 0.49])
    diff, spread, verdict = arms.compare(arms.load(base, "e"), arms.load(near, "e"), "AP50 mean")
    assert (round(diff, 3), round(spread, 3), verdict) == (0.027, 0.04, "within")
    assert arms.compare(arms.load(base, "e"), arms.load(far, "e"), "AP50 mean")[2] == "beyond"
    assert arms.compare(arms.load(base, "e"), arms.load(collapsed, "e"),
                        "AP50 mean")[2] == "disjoint"
    text = arms.table([base, near, far], "e", ["AP50 mean"])
    assert "| base (base) | 0.520 (0.500-0.540) |" in text
    assert "+0.027 within 0.040" in text and "+0.090 beyond 0.040" in text
    # A metric the base lacks (the baseline does not count) stops with the ones it has.
    with pytest.raises(SystemExit, match="has no counting; its metrics: AP50 mean"):
        arms.table([base, near], "e", ["AP50 mean", "counting"])


def test_training_seconds_add_up_over_resumed_calls(tmp_path):
    seeds.record_training(str(tmp_path), 300.0, ["--epochs=2"], None)
    seeds.record_training(str(tmp_path), 5.0, ["--epochs=2"], None)  # resumed, found finished
    record = json.loads((tmp_path / "seeds_train.json").read_text())
    assert record["seconds"] == 305.0 and [c["seconds"] for c in record["calls"]] == [300, 5]
    # A file from before `calls` existed counts as one call.
    (tmp_path / "seeds_train.json").write_text(json.dumps({"seconds": 40.0}))
    seeds.record_training(str(tmp_path), 2.0, [], "1")
    assert json.loads((tmp_path / "seeds_train.json").read_text())["seconds"] == 42.0


def test_class_names_read_a_config_with_a_field_this_code_does_not_know(tmp_path):
    # A run written by newer code (one more config field) mid-way through a seeds.py call.
    config = {"data": {"dataset": "decomp_mnist/bundled", "data_dir": None},
              "model": {"num_classes": 3, "a_later_field": True}, "kind": "decompnet"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert seeds.names_of(str(tmp_path)) == ["3", "6", "9"]
    config["model"]["num_classes"] = 2  # Disagrees with the dataset: the ids stand in.
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert seeds.names_of(str(tmp_path)) is None
    assert seeds.names_of(str(tmp_path / "missing")) is None
