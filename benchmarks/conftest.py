"""Print the fastgd / scikit-learn comparison at the end of a benchmark run.

Benchmarks store the median and minimum time per epoch of each
(configuration, library) in the ``epoch_times`` fixture; ``pytest_terminal_summary``
prints them after pytest-benchmark's own tables, with the fastgd / scikit-learn
ratio of medians per configuration. The ratio of minima is printed too: on a
machine shared with other jobs it is the less noisy of the two.
"""

import pytest

_TIMES_KEY = pytest.StashKey[dict]()


def pytest_collect_file(file_path, parent):
    """Collect ``bench_*.py`` when the folder is named (``pytest benchmarks``).

    pytest's ``python_files`` (``test_*.py``) skips them otherwise; a file named on
    the command line is collected by pytest itself, so not twice here.
    """
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)


@pytest.fixture(scope="session")
def epoch_times(request):
    """dict: (configuration label, library) -> (median, min) seconds per epoch."""
    return request.config.stash.setdefault(_TIMES_KEY, {})


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables
def pytest_terminal_summary(terminalreporter, config):
    times = config.stash.get(_TIMES_KEY, {})
    if not times:
        return
    configs = list(dict.fromkeys(cfg for cfg, _ in times))
    tr = terminalreporter
    tr.section("fastgd vs scikit-learn: time per epoch (per call: predict_proba, partial_fit)")
    header = (
        f"{'configuration':<30}{'fastgd median':>16}{'sklearn median':>17}"
        f"{'fastgd/sklearn':>17}{'speedup':>10}{'min ratio':>12}"
    )
    tr.write_line(header)
    tr.write_line("-" * len(header))
    for cfg in configs:
        fast = times.get((cfg, "fastgd"))
        sk = times.get((cfg, "sklearn"))
        fast_s = f"{fast[0] * 1e3:.1f} ms" if fast else "-"
        sk_s = f"{sk[0] * 1e3:.1f} ms" if sk else "-"
        if fast and sk:
            ratio_s = f"{fast[0] / sk[0]:.3f}"
            speedup_s = f"{sk[0] / fast[0]:.2f}x"
            min_ratio_s = f"{fast[1] / sk[1]:.3f}"
        else:
            ratio_s = speedup_s = min_ratio_s = "-"
        tr.write_line(
            f"{cfg:<30}{fast_s:>16}{sk_s:>17}{ratio_s:>17}{speedup_s:>10}{min_ratio_s:>12}"
        )
    tr.write_line(
        "fit rows: medians of the fit time / epochs; fastgd/sklearn = ratio of medians (below 1: "
        "fastgd faster);\nspeedup = sklearn/fastgd; min ratio = fastgd/sklearn of the "
        "fastest rounds. threads = threadpoolctl limit and FASTGD_NUM_THREADS around each fit."
    )
