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


def pytest_collection_modifyitems(session, config, items):
    """Start the selected tests' subprocess runs now (tests/background_runs.py)."""
    import background_runs

    if os.environ.get(background_runs.CHILD):
        return
    for item in items:
        runs = getattr(getattr(item, "module", None), "BACKGROUND_RUNS", {})
        make = runs.get(getattr(item, "originalname", None))
        if make is not None:
            target = item.callspec.params["target"]
            background_runs.start((item.originalname, target), make(target))


def pytest_sessionfinish(session, exitstatus):
    import background_runs

    background_runs.stop_all()


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
