"""Guards configs/mnist_quick.flags, the README's main command, without its 20-minute run: the
same flags on a short schedule over decomp_mnist/small, scored on validation images (digits
that no training image uses) against a stored reference band.

The reference is the spread of `bash experiments/quick_guard_spread.sh` (this test's run for
seeds 0-2 with oneDNN on and off). The instance network on the TRUE category maps is what this
schedule trains most: its floors lie half the band's width below its lowest value, above half
the band's mean, so a change that halves it fails. End to end, 400 images and 3 / 4 / 2 epochs
give little (REFERENCE: AP50 a few hundredths, one seed's a seventh of another's): those
floors only catch a network that has learned nothing (UNTRAINED: the same run with epochs
3 / 0 / 0), so they lie at least halfway from it to the lowest trained run."""

import json
import os

import numpy as np
import pytest

from tests.helpers import ROOT, run_script

# The flag file itself; only the data and the schedule are shortened (later flags win).
SHORT = ["--flagfile=" + os.path.join(ROOT, "configs", "mnist_quick.flags"),
         "--dataset=decomp_mnist/small", "--train_examples=400", "--steps_per_epoch=0",
         "--validation_examples=200",
         "--epochs=3,4,2", "--checkpoint_steps=0", "--verbose=2"]
EVALUATE = ["--split=validation", "--max_images=200", "--num_sheets=0"]

# (lowest, highest) over the six runs of experiments/quick_guard_spread.sh: mean AP50 over the
# digits and counting accuracy, on 200 validation images.
REFERENCE = {
    "truth_ap50": (0.406, 0.450),
    "truth_counting": (0.330, 0.395),
    "ap50": (0.014, 0.098),
    "counting": (0.168, 0.202),
}
UNTRAINED = {"truth_ap50": 0.071, "truth_counting": 0.110, "ap50": 0.002, "counting": 0.118}


def floor(name: str) -> float:
    lo, hi = REFERENCE[name]
    return max(lo - (hi - lo) / 2, (lo + UNTRAINED[name]) / 2)


def test_the_reference_can_fail():
    # Halving the trained figures on the true maps must fail the guard, and every floor must
    # stay above a network that learned nothing.
    for name in ("truth_ap50", "truth_counting"):
        assert floor(name) > np.mean(REFERENCE[name]) / 2, name
    for name, untrained in UNTRAINED.items():
        assert floor(name) > untrained, name


def _metrics(out_dir):
    m = json.load(open(os.path.join(out_dir, "metrics.json")))
    ap50 = [r["ap_voc"] for r in m["detection"]["iou_0.5"].values()]
    return float(np.mean(ap50)), m["counting"]["accuracy"]


@pytest.mark.slow(140)  # seconds with -n 2 on 2 cores
def test_short_quick_training_stays_within_its_reference(small_data_dir, tmp_path):
    model_dir = str(tmp_path / "quick")
    done = run_script("train.py", *SHORT, f"--data_dir={small_data_dir}",
                      f"--model_dir={model_dir}", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    evaluate = ["evaluate.py", f"--model_dir={model_dir}", f"--data_dir={small_data_dir}",
                *EVALUATE]
    done = run_script(*evaluate)
    assert done.returncode == 0, done.stderr[-3000:]
    truth_dir = os.path.join(model_dir, "eval_truth")
    done = run_script(*evaluate, "--category_source=truth", f"--output_dir={truth_dir}")
    assert done.returncode == 0, done.stderr[-3000:]
    got = dict(zip(("ap50", "counting"), _metrics(os.path.join(model_dir, "eval_validation"))))
    got.update(zip(("truth_ap50", "truth_counting"), _metrics(truth_dir)))
    print({k: round(v, 3) for k, v in got.items()})
    low = {k: v for k, v in got.items() if v < floor(k)}
    assert not low, f"below the reference band's floors {({k: floor(k) for k in low})}: {low}"
