"""Hypothesis strategies shared by the test modules."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

batch_sizes = st.integers(min_value=1, max_value=16)
widths = st.integers(min_value=1, max_value=32)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def float64_arrays(shape, low=-5.0, high=5.0, avoid_zero=0.0):
    """float64 arrays of ``shape`` with entries in [low, high].

    ``avoid_zero`` pushes entries with ``|x| < avoid_zero`` out to
    ``+-avoid_zero``, keeping central differences away from the kink of
    ReLU-like functions, where they do not measure a derivative.
    """
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False)
    arrays = hnp.arrays(np.float64, shape, elements=elements)
    if avoid_zero <= 0:
        return arrays

    def push(a):
        small = np.abs(a) < avoid_zero
        a[small] = np.where(a[small] < 0, -avoid_zero, avoid_zero)
        return a

    return arrays.map(push)


@st.composite
def batches(draw, width=None, **kwargs):
    """A float64 batch of shape (N, D) with N and D drawn unless given."""
    n = draw(batch_sizes)
    d = width if width is not None else draw(widths)
    return draw(float64_arrays((n, d), **kwargs))


@st.composite
def logits_and_targets(draw, bound=50.0, column=False):
    """Logits in [-bound, bound] of shape (N,) or (N, 1) and 0/1 targets (N,)."""
    n = draw(batch_sizes)
    shape = (n, 1) if column else (n,)
    logits = draw(float64_arrays(shape, -bound, bound))
    targets = draw(hnp.arrays(np.float64, (n,), elements=st.sampled_from([0.0, 1.0])))
    return logits, targets
