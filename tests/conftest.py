"""Shared pytest configuration: hypothesis profiles.

CI runs with the ``ci`` profile (set by ``HYPOTHESIS_PROFILE=ci`` in
``.ci/run``): derandomized, so a failure there is reproducible.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def one_blas_thread():
    """Limit BLAS to one thread for tests of tiny matrices.

    On a busy 2-core machine BLAS threads made such tests 10 to 25 times
    slower. threadpoolctl is optional; without it nothing changes.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
