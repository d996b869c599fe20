"""Check that two golden directories differ only in the uid column."""

import pathlib
import sys

import pandas as pd

a, b = map(pathlib.Path, sys.argv[1:3])
ok = True
for f in sorted(a.glob("*.csv")):
    x, y = pd.read_csv(f, dtype=str), pd.read_csv(b / f.name, dtype=str)
    cols = [c for c in x.columns if c != "uid"]
    xs = x[cols].fillna("").sort_values(cols).reset_index(drop=True)
    ys = y[cols].fillna("").sort_values(cols).reset_index(drop=True)
    same = xs.equals(ys) and list(x.columns) == list(y.columns)
    changed = (x["uid"] != y["uid"]).sum() if "uid" in x.columns and len(x) == len(y) else "-"
    print(f.name, "rows", len(x), "non-uid cells identical:", same, "uid cells changed:", changed)
    ok &= same
sys.exit(0 if ok else 1)
