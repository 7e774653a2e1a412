"""scikit-learn's IsolationForest scoring rate on one thread, for the
side-by-side comparison in `cargo xtask bench`.

Usage: python3 iforest_scoring.py ROWS  (prints samples/s)
"""
import sys
import time

import numpy as np
from sklearn.ensemble import IsolationForest

rows = int(sys.argv[1])
rng = np.random.default_rng(1)
X = np.column_stack([
    rng.uniform(0, 1500, rows) if f % 3 == 0 else
    rng.integers(0, 24, rows).astype(float) if f % 3 == 1 else
    rng.uniform(0, 4e9, rows)
    for f in range(11)
])
model = IsolationForest(n_estimators=200, random_state=42, n_jobs=1).fit(X[:10_000])
start = time.perf_counter()
model.score_samples(X)
print(f"{rows / (time.perf_counter() - start):.0f}")
