"""Connected components of a graph held as numbered nodes and two arrays of edge ends."""

from __future__ import annotations

import numpy as np


def components(nodes: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each node 0 … ``nodes`` - 1, the smallest node of its connected part, the
    edges joining ``a[i]`` and ``b[i]``. The smallest index of each part spreads along
    the edges, each node then taking its label's label, until nothing changes: a few
    passes, each over every edge at once."""
    label = np.arange(nodes, dtype=np.result_type(a.dtype, b.dtype, np.int32))
    while True:
        lowest = np.minimum(label[a], label[b])
        spread = label.copy()
        np.minimum.at(spread, a, lowest)
        np.minimum.at(spread, b, lowest)
        spread = spread[spread]
        if np.array_equal(spread, label):
            return label
        label = spread
