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

    if os.environ.get(background_runs.CHILD) or os.environ.get("PYTEST_XDIST_WORKER"):
        return  # a child, or an xdist worker (whose share of the tests is not known yet)
    for item in items:
        runs = getattr(getattr(item, "module", None), "BACKGROUND_RUNS", {})
        make = runs.get(getattr(item, "originalname", None))
        if make is not None:
            target = item.callspec.params["target"]
            background_runs.start((item.originalname, target), make(target))


@pytest.fixture(scope="session")
def ulp_results(request):
    """Collects the accuracy measurements for the summary table."""
    results = getattr(request.config, "_ulp_results", None)
    if results is None:
        results = request.config._ulp_results = []
    return results


_RESULT_FIELDS = ("family", "func", "max_ulp", "n_outputs", "cancel_rows",
                  "cancel_max_ulp_of_max", "cancel_max_ulp_of_result")


def pytest_sessionfinish(session, exitstatus):
    import background_runs

    background_runs.stop_all()
    # an xdist worker hands its accuracy measurements to the controller
    results = getattr(session.config, "_ulp_results", None)
    if results and hasattr(session.config, "workeroutput"):
        session.config.workeroutput["ulp_results"] = [
            {"dtype": str(r.dtype), **{f: getattr(r, f) for f in _RESULT_FIELDS}}
            for r in results]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """(xdist controller) a worker's accuracy measurements, for the summary table."""
    rows = getattr(node, "workeroutput", {}).get("ulp_results")
    if rows:
        import numpy as np
        from ulp_report import Result

        collected = getattr(node.config, "_ulp_results", None)
        if collected is None:
            collected = node.config._ulp_results = []
        collected.extend(Result(**{**row, "dtype": np.dtype(row["dtype"])}) for row in rows)


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
