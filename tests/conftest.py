"""Shared pytest configuration: hypothesis profiles.

CI runs with the ``ci`` profile (set by ``HYPOTHESIS_PROFILE=ci`` in
``.ci/run``): derandomized, so a failure there is reproducible.
"""

import os

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
