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


def _results_of(config) -> list:
    """The run's accuracy measurements (ulp_report.Result), kept on the pytest config."""
    if not hasattr(config, "_ulp_results"):
        config._ulp_results = []
    return config._ulp_results


@pytest.fixture(scope="session")
def ulp_results(request):
    """Collects the accuracy measurements for the summary table."""
    return _results_of(request.config)


# A worker ships a Result's fields but its example of the worst case (`worst`)
_SHIPPED = ("dtype", "worst")


def pytest_sessionfinish(session, exitstatus):
    # an xdist worker hands its accuracy measurements to the controller
    results = getattr(session.config, "_ulp_results", None)
    if results and hasattr(session.config, "workeroutput"):
        import dataclasses

        names = [f.name for f in dataclasses.fields(results[0]) if f.name not in _SHIPPED]
        session.config.workeroutput["ulp_results"] = [
            {"dtype": str(r.dtype), **{n: getattr(r, n) for n in names}} for r in results]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """(xdist controller) a worker's accuracy measurements, for the summary table."""
    rows = getattr(node, "workeroutput", {}).get("ulp_results")
    if rows:
        import numpy as np
        from ulp_report import Result

        _results_of(node.config).extend(
            Result(**{**row, "dtype": np.dtype(row["dtype"])}) for row in rows)


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
