"""Print the fastgd / scikit-learn comparison at the end of a benchmark run.

Benchmarks store the median time per epoch of each (configuration, library)
in the ``epoch_medians`` fixture; ``pytest_terminal_summary`` prints them after
pytest-benchmark's own tables, with the ratio of medians per configuration.
"""

import pytest

_MEDIANS_KEY = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def epoch_medians(request):
    """dict: (configuration label, library) -> median seconds per epoch."""
    return request.config.stash.setdefault(_MEDIANS_KEY, {})


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables
def pytest_terminal_summary(terminalreporter, config):
    medians = config.stash.get(_MEDIANS_KEY, {})
    if not medians:
        return
    configs = list(dict.fromkeys(cfg for cfg, _ in medians))
    tr = terminalreporter
    tr.section("fastgd vs scikit-learn: median time per epoch")
    header = (
        f"{'configuration':<32}{'fastgd (ms)':>13}{'sklearn (ms)':>14}"
        f"{'fastgd/sklearn':>16}{'speedup':>10}"
    )
    tr.write_line(header)
    tr.write_line("-" * len(header))
    for cfg in configs:
        fast = medians.get((cfg, "fastgd"))
        sk = medians.get((cfg, "sklearn"))
        fast_s = f"{fast * 1e3:.1f}" if fast is not None else "-"
        sk_s = f"{sk * 1e3:.1f}" if sk is not None else "-"
        if fast is not None and sk is not None:
            ratio_s, speedup_s = f"{fast / sk:.3f}", f"{sk / fast:.1f}x"
        else:
            ratio_s = speedup_s = "-"
        tr.write_line(f"{cfg:<32}{fast_s:>13}{sk_s:>14}{ratio_s:>16}{speedup_s:>10}")
    tr.write_line(
        "threads = threadpoolctl limit (BLAS and OpenMP) around each fit; "
        "speedup = sklearn / fastgd."
    )
