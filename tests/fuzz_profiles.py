"""Hypothesis settings of the fuzz targets: small in ``make test``, long on demand.

``HAMI_FUZZ_PROFILE=fuzz-long`` (thousands of examples per target) is the benchmark run documented in
docs/security.md; the default ``fuzz-ci`` keeps each target to a few seconds on a 2-core CI machine.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("fuzz-ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("fuzz-long", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

#: decorator for every fuzz target
FUZZ = settings(settings.get_profile(os.environ.get("HAMI_FUZZ_PROFILE", "fuzz-ci")))
#: for targets that cost tens of milliseconds per example (full HTTP + API round trips)
FUZZ_SLOW = settings(FUZZ, max_examples=15 if os.environ.get("HAMI_FUZZ_PROFILE", "fuzz-ci") == "fuzz-ci" else 500)
#: for cheap property targets that need many examples to meet rare cases (a few ms each): 300 in ``make test``
#: (a few seconds), the long profile's count on demand
FUZZ_MANY = settings(FUZZ, max_examples=300 if os.environ.get("HAMI_FUZZ_PROFILE", "fuzz-ci") == "fuzz-ci" else 5000)
