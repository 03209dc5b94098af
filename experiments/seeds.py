"""One training command at several seeds (optionally with oneDNN off and on), every run
evaluated by evaluate.py, and each metric's mean, min, max and standard deviation over the runs
(markdown and JSON): the spread a single comparison must beat.

    python experiments/seeds.py --name=quick --seeds=0,1,2 \\
        --eval="validation=--split=validation --max_images=500" \\
        -- --flagfile=configs/mnist_quick.flags

Everything after `--` goes to train.py, which gets `--seed` and `--model_dir=OUT/NAME/RUN`
(RUN: `seed0`, or `seed0_onednn1` with `--onednn`). Each `--eval` is NAME=evaluate.py flags,
written to RUN/eval_NAME. Resumable: a run whose evaluations all exist is skipped, a new --eval
on finished runs evaluates only it, and a killed training resumes from its checkpoints when the
command is given again. The summaries go to
OUT/NAME/summary_EVAL.md and .json; `--summary_only` rewrites them from what is there.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

from decompnet_tf.console import import_tensorflow

ENVIRON = dict(os.environ)  # The runs' environment: the user's, not the quiet import's.
import_tensorflow()  # Quietly: TensorFlow's start-up lines would bury the progress lines.
from decompnet_tf.model_io import dataset_class_names  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = "<14"  # The smallest size bucket of evaluate.py's breakdown.


def run_names(seeds: list[int], onednn: list[str]) -> list[tuple[str, int, str | None]]:
    """[(run name, seed, TF_ENABLE_ONEDNN_OPTS value or None)] in the order they run."""
    if not onednn:
        return [(f"seed{s}", s, None) for s in seeds]
    return [(f"seed{s}_onednn{o}", s, o) for s in seeds for o in onednn]


def metrics_of(m: dict, names: list[str] | None = None) -> dict[str, float]:
    """The figures RESULTS.md quotes, from one evaluate.py metrics.json: AP50 and recall at
    precision 0.84 per class and their mean, segmentation AP50 per class, AP50 of the smallest
    objects, counting (not for the sliding-window baseline, which does not count) and ms per
    image. `names`: class names by id (default: the ids)."""
    det = m["detection"]["iou_0.5"]
    names = names or list(det)
    out = {}
    for i, k in enumerate(det):
        out[f"AP50 '{names[i]}'"] = det[k]["ap_voc"]
    out["AP50 mean"] = float(np.mean([det[k]["ap_voc"] for k in det]))
    for i, k in enumerate(det):
        out[f"recall at P=0.84 '{names[i]}'"] = det[k]["recall_at_precision_0.84"]
    for i, r in enumerate(m.get("segmentation", {}).get("iou_0.5", {}).values()):
        out[f"segm AP50 '{names[i]}'"] = r["ap_voc"]
    by_size = m.get("breakdown", {}).get("ap50_by_size", {})
    if SIZE in by_size:
        out[f"AP50 {SIZE} px"] = by_size[SIZE]["ap_voc_mean"]
    if not m["model"].get("windows_per_image"):
        out["counting"] = m["counting"]["accuracy"]
    out["ms / image"] = m["speed"]["ms_per_image"]
    return out


def summarize(runs: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """{metric: {mean, min, max, std, n}} over the runs that have it (std: the sample standard
    deviation, 0 for one run)."""
    metrics = list(dict.fromkeys(k for r in runs.values() for k in r))
    out = {}
    for k in metrics:
        v = np.array([r[k] for r in runs.values() if k in r], np.float64)
        out[k] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()),
                  "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}
    return out


def markdown(runs: dict[str, dict[str, float]], summary: dict) -> str:
    """A table: per metric its mean, range, max - min, standard deviation and every run."""
    head = "| metric | mean | range | max - min | std | " + " | ".join(runs) + " |"
    lines = [head, "|" + "---|" * (5 + len(runs))]
    for k, s in summary.items():
        each = " | ".join(f"{r[k]:.3f}" if k in r else "-" for r in runs.values())
        lines.append(f"| {k} | {s['mean']:.3f} | {s['min']:.3f}-{s['max']:.3f} | "
                     f"{s['max'] - s['min']:.3f} | {s['std']:.3f} | {each} |")
    return "\n".join(lines) + "\n"


def parse_evals(specs: list[str]) -> dict[str, list[str]]:
    evals = {}
    for spec in specs:
        name, sep, flags = spec.partition("=")
        if not sep or not name or "/" in name:
            raise SystemExit(f"seeds.py: --eval must be NAME=FLAGS (a plain name), got {spec!r}")
        evals[name] = shlex.split(flags)
    return evals


def run(cmd: list[str], log: str, env: dict) -> None:
    with open(log, "a") as f:
        f.write(f"$ {shlex.join(cmd)}\n")
        f.flush()
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        raise SystemExit(f"seeds.py: `{shlex.join(cmd)}` failed ({done.returncode}); see {log}")


def record_training(model_dir: str, seconds: float, train_args: list[str],
                    opts: str | None) -> None:
    """Adds one train.py call to RUN/seeds_train.json: `seconds` sums every call, so a run
    resumed (or found finished) keeps the minutes its training took, and `calls` lists each."""
    path = os.path.join(model_dir, "seeds_train.json")
    calls = []
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        calls = old.get("calls", [{"seconds": old["seconds"]}])
    calls.append({"seconds": seconds})
    with open(path, "w") as f:
        json.dump({"seconds": sum(c["seconds"] for c in calls), "calls": calls,
                   "train_args": train_args, "TF_ENABLE_ONEDNN_OPTS": opts}, f)


def main(argv: list[str]) -> None:
    cut = argv.index("--") if "--" in argv else len(argv)
    own, train_args = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="The experiment's folder under --out.")
    p.add_argument("--out", default="runs/seeds", help="Where the experiments go.")
    p.add_argument("--seeds", default="0,1,2", help="Comma-separated train.py --seed values.")
    p.add_argument("--onednn", default="", help="Comma-separated TF_ENABLE_ONEDNN_OPTS values "
                   "each seed runs with (e.g. 0,1); empty: the environment's.")
    p.add_argument("--eval", action="append", default=[], help="NAME=evaluate.py flags; "
                   "repeatable (default: validation=--split=validation --max_images=500).")
    p.add_argument("--summary_only", action="store_true", help="Train and evaluate nothing.")
    args = p.parse_args(own)
    if any(a.startswith(("--seed=", "--model_dir=")) for a in train_args):
        raise SystemExit("seeds.py: give --seeds and --name/--out, not train.py's --seed or "
                         "--model_dir")
    evals = parse_evals(args.eval or ["validation=--split=validation --max_images=500"])
    seeds = [int(s) for s in args.seeds.split(",") if s]
    onednn = [o for o in args.onednn.split(",") if o]
    base = os.path.join(args.out, args.name)
    os.makedirs(base, exist_ok=True)
    results = {e: {} for e in evals}
    for name, seed, opts in run_names(seeds, onednn):
        model_dir = os.path.join(base, name)
        done = {e: os.path.join(model_dir, f"eval_{e}", "metrics.json") for e in evals}
        if not args.summary_only and not all(os.path.exists(f) for f in done.values()):
            env = {**ENVIRON, **({"TF_ENABLE_ONEDNN_OPTS": opts} if opts else {})}
            log = model_dir + ".log"
            start = time.time()
            run([sys.executable, os.path.join(ROOT, "train.py"), *train_args, f"--seed={seed}",
                 f"--model_dir={model_dir}"], log, env)
            record_training(model_dir, time.time() - start, train_args, opts)
            for e, flags in evals.items():  # Only the missing ones: a test split read once.
                if os.path.exists(done[e]):
                    continue
                run([sys.executable, os.path.join(ROOT, "evaluate.py"), f"--model_dir={model_dir}",
                     *flags,
                     f"--output_dir={os.path.dirname(done[e])}"], log, env)
            print(f"{name}: done in {(time.time() - start) / 60:.1f} min", flush=True)
        elif not args.summary_only:
            print(f"{name}: evaluated already, skipped", flush=True)
        for e, path in done.items():
            if os.path.exists(path):
                with open(path) as f:
                    results[e][name] = metrics_of(json.load(f), names_of(model_dir))
    for e, runs in results.items():
        if not runs:
            continue
        summary = summarize(runs)
        table = markdown(runs, summary)
        stem = os.path.join(base, f"summary_{e}")
        with open(stem + ".md", "w") as f:
            f.write(table)
        with open(stem + ".json", "w") as f:
            json.dump({"name": args.name, "eval": e, "eval_flags": evals[e],
                       "train_args": train_args, "runs": runs, "summary": summary}, f, indent=2)
        print(f"\n{args.name}, {e} ({len(runs)} runs; {stem}.md):\n{table}", flush=True)


def names_of(model_dir: str) -> list[str] | None:
    """The model's class names (its dataset's), or None to use the ids. Reads config.json as
    plain JSON, so a seeds.py started before a config field was added reads runs that have it."""
    try:
        with open(os.path.join(model_dir, "config.json")) as f:
            config = json.load(f)
    except FileNotFoundError:  # No config.json: the ids name the classes.
        return None
    data = config["data"]
    return dataset_class_names(data["dataset"], data.get("data_dir"),
                               config["model"]["num_classes"])


if __name__ == "__main__":
    main(sys.argv[1:])
