"""The PSNR-gain sampler against the uniform one: validation PSNR against iterations and wall time.

Usage: python benchmarks/sampler.py RUN_UNIFORM RUN_GAIN [--out docs/sampler.png]

The two runs are `vsr train` runs with the same model, seed, data and budget, differing only in
``--sampler`` (their exact commands are in each RUN/command.txt), validated on the same set
(``--val``). Reads each RUN/val.csv; writes one PNG with two panels (PSNR against iterations, and
against wall minutes) and prints a Markdown table of the PSNR at every validation.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.plot import Series, plot  # noqa: E402


def read(run: Path) -> list[dict[str, float]]:
    path = run / "val.csv"
    if not path.is_file():
        sys.exit(f"benchmarks/sampler.py: no {path}")
    with open(path) as fh:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(fh)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs=2, metavar="RUN")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "sampler.png")
    args = ap.parse_args()
    rows = {run.name: read(run) for run in args.runs}
    by_it = [Series(name, [r["iteration"] for r in v], [r["psnr"] for r in v], line=True) for name, v in rows.items()]
    by_time = [Series(name, [r["seconds"] / 60 for r in v], [r["psnr"] for r in v], line=True)
               for name, v in rows.items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot([("validation PSNR-Y against iterations", by_it), ("... against wall minutes", by_time)], args.out,
         xlabel="iterations (left), wall minutes (right)", ylabel="PSNR-Y (dB)")
    names = list(rows)
    print("| iteration | " + " | ".join(f"{n} PSNR | {n} min" for n in names) + " |")
    print("|---:|" + "---:|---:|" * len(names))
    for i, first in enumerate(rows[names[0]]):
        cells = []
        for n in names:
            r = rows[n][i] if i < len(rows[n]) else None
            cells += [f"{r['psnr']:.3f}", f"{r['seconds'] / 60:.1f}"] if r else ["", ""]
        print(f"| {int(first['iteration'])} | " + " | ".join(cells) + " |")
    print(f"\n-> {args.out}")


if __name__ == "__main__":
    main()
