"""Shared test settings: hypothesis profile, the accuracy table in the summary."""

import os

import pytest
from hypothesis import HealthCheck, settings

# Bounded example counts keep the property tests at a few seconds; set
# HYPOTHESIS_PROFILE=thorough for a longer hunt.
settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def ulp_results(request):
    """Collects the accuracy measurements for the summary table."""
    results = getattr(request.config, "_ulp_results", None)
    if results is None:
        results = request.config._ulp_results = []
    return results


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    results = getattr(config, "_ulp_results", None)
    if not results:
        return
    try:
        from ulp_report import format_table
    except ImportError:  # pragma: no cover - tests/ not on sys.path
        from tests.ulp_report import format_table
    terminalreporter.section("max ulp error per family (tests/ulp_report.py)")
    terminalreporter.write_line(format_table(results))
