"""The inference benchmarks run end to end on a tiny trained model and report what they promise:
the CPU kind, every part at every batch size, and ratios consistent with their parts. Times are
never asserted (CI machines differ)."""

import json

from decompnet_tf.config import BOX_SOURCES
from tests.helpers import run_script


def test_inference_parts_reports_every_part_with_the_cpu_kind(trained_run, tmp_path):
    out = tmp_path / "parts.json"
    done = run_script("benchmarks/inference_parts.py", f"--model_dir={trained_run}",
                      "--images=4", "--batches=2,1", "--repeats=1", "--box_source=component",
                      f"--json={out}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("CPU: ") and " core" in done.stdout.splitlines()[0]
    report = json.loads(out.read_text())
    assert report["box_source"] == "component" and report["images"] == 4
    for batch in ("2", "1"):
        parts = report["ms_per_image"][batch]
        assert set(parts) == {"network", "detector, component boxes",
                              "detector, regressor boxes"} | {
            f"post-processing, {source} boxes" for source in BOX_SOURCES}
        assert all(ms > 0 for ms in parts.values())
        ratios = report["ratios"][batch]
        assert abs(ratios["post_over_network"] - parts["post-processing, component boxes"]
                   / parts["network"]) < 1e-9
        assert abs(ratios["stored_over_regressor"] - parts["detector, component boxes"]
                   / parts["detector, regressor boxes"]) < 1e-9
    for part in ("network", "detector, component boxes / regressor"):
        assert part in done.stdout


def test_pool_layout_ways_agree():
    done = run_script("benchmarks/pool_layout.py", "--maps=4", "--size=8", "--rounds=2",
                      "--iters=1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("CPU: ")
    assert done.stdout.count("same output") == 3 and "DIFFERENT" not in done.stdout
