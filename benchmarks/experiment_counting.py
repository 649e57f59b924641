"""The counting experiment at CPU scale, recorded: ``groundkit experiment counting --scale cpu``
into a work folder, then ``results.json`` and the report copied under ``benchmarks/results/``.

    python benchmarks/experiment_counting.py [--out runs/counting-cpu] [--seed 0] [--scale cpu]

Prints the arms' table (the command's own output) and writes
``benchmarks/results/experiment_counting_<scale>.json`` and ``experiment_counting_<scale>/report.html``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("runs/counting-cpu"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", default="cpu")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    from groundkit.cli import app

    cli = ["experiment", "counting", "--out", str(args.out), "--scale", args.scale, "--seed", str(args.seed)]
    try:
        app(cli + (["--model", args.model] if args.model else []), standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
    results = json.loads((args.out / "results.json").read_text(encoding="utf-8"))
    target = RESULTS / f"experiment_counting_{args.scale}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(args.out / "report", target / "report")
    shutil.copy(args.out / "report.html", target / "report.html")
    (RESULTS / f"experiment_counting_{args.scale}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS / f'experiment_counting_{args.scale}.json'} and {target / 'report.html'}")


if __name__ == "__main__":
    main()
