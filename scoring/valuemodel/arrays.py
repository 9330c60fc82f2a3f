"""Array type aliases and coercion helpers shared by the value-model modules."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def as_float(values: npt.ArrayLike) -> FloatArray:
    """`values` as a float64 array, at least one-dimensional."""
    return np.atleast_1d(np.asarray(values, dtype=np.float64))


def as_int(values: npt.ArrayLike) -> IntArray:
    """`values` as an int64 array, at least one-dimensional."""
    return np.atleast_1d(np.asarray(values, dtype=np.int64))
