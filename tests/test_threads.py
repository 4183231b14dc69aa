"""The thread policy (fastgd/_threads.py) on simulated machines, and the environment
variables read at import or per call.

This machine has 2 cores, so larger ones are simulated: the readers of the affinity
mask, the cgroup quota and the load are monkeypatched, and ``usable_cpus``' cache is
cleared around each test.
"""

import os
import subprocess
import tempfile
import sys
import warnings

import numpy as np
import pytest

import fastgd
from fastgd import _build, _engine, _threads
from fastgd._engine import KernelData, Network, Optimizer

MACHINES = [1, 2, 4, 8, 16, 64]

# Shapes of the benchmark grid and of the tests: (units, rows of a batch).
SHAPES = [
    ([100, 100, 10], 32), ([100, 100, 10], 200), ([784, 100, 10], 200),
    ([784, 1024, 10], 1024), ([100, 100, 100, 100, 10], 200), ([10, 5, 2], 200),
    ([784, 10], 200), ([100, 1], 2000), ([50, 128, 2], 32), ([784, 100, 10], 60000),
]


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    """No fastgd thread variables from outside; usable_cpus() read afresh."""
    for name in ("FASTGD_NUM_THREADS", "FASTGD_MAX_SLICES"):
        monkeypatch.delenv(name, raising=False)
    _threads.usable_cpus.cache_clear()
    yield
    _threads.usable_cpus.cache_clear()


def simulate(monkeypatch, affinity, quota=None, host=None, runnable=1, own=1):
    """A machine of ``host`` CPUs (default: the mask) of which ``affinity`` are in
    our mask, a cgroup quota of ``quota`` CPUs, ``runnable`` runnable threads on the
    machine (None: no /proc), ``own`` of them ours."""
    monkeypatch.setattr(_threads, "_affinity_cpus", lambda: affinity)
    monkeypatch.setattr(_threads, "_cgroup_cpu_limit", lambda: quota)
    monkeypatch.setattr(_threads, "_host_cpus", lambda: host or affinity)
    monkeypatch.setattr(_threads, "_runnable_tasks", lambda: runnable)
    monkeypatch.setattr(_threads, "_running_threads_of_this_process", lambda: own)
    _threads.usable_cpus.cache_clear()


# ------------------------------------------------------------------ usable CPUs
@pytest.mark.parametrize("affinity,quota,expected", [
    (1, None, 1), (2, None, 2), (8, None, 8), (64, None, 64),
    (64, 2.0, 2),     # a container of 2 CPUs on a 64-CPU host
    (64, 2.5, 3),     # fractional quotas round up
    (4, 16.0, 4),     # the mask is tighter than the quota
    (16, 0.5, 1),     # never below one
])
def test_usable_cpus_from_affinity_and_quota(monkeypatch, affinity, quota, expected):
    simulate(monkeypatch, affinity, quota)
    assert _threads.usable_cpus() == expected


def test_usable_cpus_is_read_once(monkeypatch):
    simulate(monkeypatch, 8)
    assert _threads.usable_cpus() == 8
    monkeypatch.setattr(_threads, "_affinity_cpus", lambda: 3)
    assert _threads.usable_cpus() == 8  # fixed for the process: slices do not change


def test_usable_cpus_of_this_process():
    assert 1 <= _threads.usable_cpus() <= len(os.sched_getaffinity(0)) <= os.cpu_count()


def _cgroup_tree(tmp_path, version, own_path, limits, mount_root="/"):
    """Fake /proc/self/cgroup, /proc/self/mountinfo and a cgroup mount under
    tmp_path; ``limits`` maps cgroup paths (relative to the mount) to
    (quota, period), quota None meaning no limit."""
    mount = tmp_path / "cgroup"
    for rel, (quota, period) in limits.items():
        d = mount / rel.strip("/")
        d.mkdir(parents=True, exist_ok=True)
        if version == 2:
            (d / "cpu.max").write_text(f"{quota or 'max'} {period}\n")
        else:
            (d / "cpu.cfs_quota_us").write_text(f"{quota or -1}\n")
            (d / "cpu.cfs_period_us").write_text(f"{period}\n")
    if version == 2:
        cgroup = f"0::{own_path}\n"
        mountinfo = f"30 1 0:26 {mount_root} {mount} rw,nosuid - cgroup2 cgroup2 rw\n"
    else:
        cgroup = f"5:memory:/x\n4:cpu,cpuacct:{own_path}\n0::/\n"
        mountinfo = (f"31 25 0:27 {mount_root} {tmp_path / 'mem'} rw - cgroup cgroup "
                     f"rw,memory\n"
                     f"32 25 0:28 {mount_root} {mount} rw,nosuid - cgroup cgroup "
                     f"rw,cpu,cpuacct\n")
    (tmp_path / "cgroup.txt").write_text(cgroup)
    (tmp_path / "mountinfo.txt").write_text(mountinfo)
    return str(tmp_path / "cgroup.txt"), str(tmp_path / "mountinfo.txt")


@pytest.mark.parametrize("version", [1, 2])
def test_cgroup_quota_is_the_tightest_of_the_ancestors(tmp_path, version):
    files = _cgroup_tree(tmp_path, version, "/user.slice/job", {
        "/": (None, 100000),
        "/user.slice": (300000, 100000),   # 3 CPUs for the parent
        "/user.slice/job": (None, 100000),
    })
    assert _threads._cgroup_cpu_limit(*files) == 3.0
    files = _cgroup_tree(tmp_path, version, "/user.slice/job", {
        "/user.slice/job": (150000, 100000),
    })
    assert _threads._cgroup_cpu_limit(*files) == 1.5


@pytest.mark.parametrize("version", [1, 2])
def test_cgroup_without_quota_or_files(tmp_path, version):
    files = _cgroup_tree(tmp_path, version, "/a", {"/": (None, 100000),
                                                   "/a": (None, 100000)})
    assert _threads._cgroup_cpu_limit(*files) is None
    missing = str(tmp_path / "none")
    assert _threads._cgroup_cpu_limit(missing, missing) is None


def test_cgroup_of_a_container(tmp_path):
    """In a container the mount shows the container's own cgroup: the path in
    /proc/self/cgroup is the host's, outside the mount's root."""
    files = _cgroup_tree(tmp_path, 1, "/docker/abc", {"/": (200000, 100000)},
                         mount_root="/docker/abc")
    assert _threads._cgroup_cpu_limit(*files) == 2.0
    files = _cgroup_tree(tmp_path, 2, "/", {"/": (400000, 100000)},
                         mount_root="/kubepods/pod1")
    assert _threads._cgroup_cpu_limit(*files) == 4.0


# ---------------------------------------------------------------- slice policy
def _work_per_row(units):
    return 6 * sum(a * b for a, b in zip(units[:-1], units[1:]))


@pytest.mark.parametrize("cpus", MACHINES)
@pytest.mark.parametrize("units,rows", SHAPES)
def test_slice_policy_properties(monkeypatch, cpus, units, rows):
    simulate(monkeypatch, cpus)
    n = _threads.slices_for(units, rows)
    assert n == _threads.slices_for(units, rows, cap=cpus)
    assert 1 <= n <= cpus
    if n > 1:  # every slice worth its fork/join
        assert rows // n >= _threads._MIN_ROWS_PER_SLICE
        assert rows * _work_per_row(units) / n >= _threads._MIN_FLOPS_PER_SLICE
    # More rows or more CPUs never mean fewer slices, and the shape alone decides
    # how far it goes: a slice is added whenever CPUs, rows and work allow one.
    assert _threads.slices_for(units, 2 * rows, cap=cpus) >= n
    if cpus > 1:
        assert n >= _threads.slices_for(units, rows, cap=cpus // 2)
    if n < cpus and n < _threads._MAX_SLICES:
        more = n + 1
        params = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
        assert (rows // more < _threads._MIN_ROWS_PER_SLICE
                or rows * _work_per_row(units) // more < _threads._MIN_FLOPS_PER_SLICE
                or more * params > _threads._MAX_SLICED_PARAMS)


@pytest.mark.parametrize("cpus", MACHINES)
def test_large_batches_use_every_cpu(monkeypatch, cpus):
    simulate(monkeypatch, cpus)
    assert _threads.slices_for([784, 100, 10], 1024) == cpus      # 16 rows a slice at 64
    assert _threads.slices_for([784, 100, 10], 60000) == cpus     # full-batch gradient
    assert _threads.slices_for([784, 1024, 10], 1024) == min(cpus, 41)  # memory bound
    assert _threads.slices_for([10, 5, 2], 200) == 1              # too little work


def test_two_cpus_keep_the_two_core_policy(monkeypatch):
    """Where the 2-core timings were taken, nothing changes: two slices at most."""
    simulate(monkeypatch, 2)
    for units, rows in SHAPES:
        assert _threads.slices_for(units, rows) <= 2
    assert _threads.slices_for([100, 100, 10], 32) == 2
    assert _threads.splits_units([100, 100, 10], 32, 2)


def test_private_gradients_are_bounded():
    units = [3000, 3000, 10]  # 9M parameters
    assert _threads.slices_for(units, 4096, cap=64) == 3
    assert _threads.slices_for([8000, 8000, 10], 4096, cap=64) == 2  # never below 2


@pytest.mark.parametrize("cpus", MACHINES)
def test_slices_do_not_follow_threads_or_load(monkeypatch, cpus):
    simulate(monkeypatch, cpus)
    expected = [_threads.slices_for(u, r) for u, r in SHAPES]
    for threads in ("1", "3", "64"):
        monkeypatch.setenv("FASTGD_NUM_THREADS", threads)
        for runnable in (1, 200):
            monkeypatch.setattr(_threads, "_runnable_tasks", lambda r=runnable: r)
            assert [_threads.slices_for(u, r) for u, r in SHAPES] == expected


@pytest.mark.parametrize("cpus", MACHINES)
def test_threads_for_stays_within_slices_threads_and_idle_cores(monkeypatch, cpus):
    simulate(monkeypatch, cpus)
    for threads in (1, 2, 3, 100):
        monkeypatch.setenv("FASTGD_NUM_THREADS", str(threads))
        for busy in (0, cpus // 2, cpus):
            monkeypatch.setattr(_threads, "_runnable_tasks", lambda b=busy: b + 1)
            for slices in (1, 2, 4, 64):
                n = _threads.threads_for(slices)
                assert 1 <= n <= min(slices, threads, max(1, cpus - busy))
                assert n == max(1, min(slices, threads, cpus - busy))


def test_max_slices_variable(monkeypatch):
    simulate(monkeypatch, 16)
    shape = ([784, 100, 10], 1024)
    assert _threads.slices_for(*shape) == 16
    monkeypatch.setenv("FASTGD_MAX_SLICES", "3")
    assert _threads.slice_cap() == 3 and _threads.slices_for(*shape) == 3
    monkeypatch.setenv("FASTGD_MAX_SLICES", "1000")
    assert _threads.slice_cap() == 64  # the kernels' limit
    for bad in ("abc", "0", "-3", "2.5"):
        monkeypatch.setenv("FASTGD_MAX_SLICES", bad)
        with pytest.warns(RuntimeWarning, match=f"FASTGD_MAX_SLICES='{bad}'"):
            assert _threads.slice_cap() == 16


# ---------------------------------------------------- bit identity, 2+ slices
def _spy_epochs(monkeypatch):
    """Record (n_slices, n_threads) of every train_epoch / loss_gradient call."""
    calls = []
    for name in ("train_epoch", "loss_gradient"):
        real = getattr(_engine._kernels, name)

        def spy(*args, real=real, **options):
            calls.append((args[-2], args[-1]))
            return real(*args, **options)

        monkeypatch.setattr(_engine._kernels, name, spy)
    return calls


@pytest.mark.parametrize("cpus", [2, 4, 8])
@pytest.mark.parametrize("units,batch", [((64, 64, 8), 256), ((64, 48, 48, 8), 256),
                                         ((64, 96, 8), 48)])  # the last splits units
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_across_threads_on_a_simulated_machine(monkeypatch, cpus, units,
                                                              batch, dtype):
    """The policy's own slice count (asserted > 1) on 1, 2 and 3 threads: the same
    bits, for epochs and the full-batch gradient."""
    simulate(monkeypatch, cpus)
    monkeypatch.setattr(_threads, "idle_cores", lambda: 64)
    monkeypatch.setattr(_engine, "_BLOCK_ELEMENTS", 1)  # 64-row blocks: many parts
    rng = np.random.RandomState(0)
    n = 1000
    X = rng.normal(size=(n, units[0])).astype(dtype)
    Y = np.eye(units[-1], dtype=dtype)[rng.randint(units[-1], size=n)]
    size = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    params = rng.uniform(-0.3, 0.3, size).astype(dtype)
    order = rng.permutation(n)
    slices = _threads.slices_for(units, batch)
    assert slices == min(cpus, batch // _threads._MIN_ROWS_PER_SLICE) > 1
    assert _threads.splits_units(units, batch, slices) == (batch < 64)
    calls = _spy_epochs(monkeypatch)
    results = {}
    for threads in (1, 2, 3):
        monkeypatch.setenv("FASTGD_NUM_THREADS", str(threads))
        net = Network(units, "tanh", "softmax", params.copy())
        opt = Optimizer("adam", size, dtype, 0.01)
        data = KernelData(X, dtype, Y)
        loss = net.train_epoch(data, "log_loss", 1e-3, opt, order, batch)
        loss += net.train_epoch(data, "log_loss", 1e-3, opt, order[:333], batch)
        full = net.loss_gradient(data, "log_loss", 1e-3)
        results[threads] = (loss, full, net.params.copy(), net.grads.copy(),
                            opt.state_1.copy(), net.predict(data))
    epochs = [c for c in calls if c[0] == slices]
    assert {t for _, t in epochs} == ({1, 2, 3} if slices >= 3 else {1, 2})
    assert all(s > 1 for s, _ in calls)  # full-batch parts too
    for threads in (2, 3):
        for a, b in zip(results[1], results[threads]):
            np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ idle cores
@pytest.mark.parametrize("kwargs,expected", [
    (dict(affinity=2, runnable=1), 2),              # only us
    (dict(affinity=2, runnable=2, own=1), 1),       # one other thread
    (dict(affinity=2, runnable=9, own=1), 1),       # never below one
    (dict(affinity=2, runnable=4, own=3), 1),       # our spinning workers do not count
    (dict(affinity=16, runnable=5, own=1), 12),
    (dict(affinity=64, quota=4.0, runnable=1), 4),  # a quota'd container
    (dict(affinity=64, quota=4.0, runnable=62, own=1), 3),
    # 4 of 64 CPUs in our mask: the others are taken to be spread evenly
    (dict(affinity=4, host=64, runnable=33, own=1), 2),
    (dict(affinity=4, host=64, runnable=60, own=1), 1),
    (dict(affinity=4, host=64, runnable=8, own=1), 4),
    (dict(affinity=8, runnable=None), 8),           # no /proc: all usable CPUs
])
def test_idle_cores_simulated(monkeypatch, kwargs, expected):
    simulate(monkeypatch, **kwargs)
    assert _threads.idle_cores() == expected


def test_idle_cores_skips_counting_our_threads_on_a_quiet_machine(monkeypatch):
    simulate(monkeypatch, 8, runnable=1)

    def fail():
        raise AssertionError("counted our threads")

    monkeypatch.setattr(_threads, "_running_threads_of_this_process", fail)
    assert _threads.idle_cores() == 8


def test_idle_cores_here():
    assert 1 <= _threads.idle_cores() <= _threads.usable_cpus()
    assert _threads._running_threads_of_this_process() >= 1  # this thread
    assert _threads._runnable_tasks() >= 1


# ------------------------------------------------------ environment variables
@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5"])
def test_invalid_num_threads_warns_and_falls_back(monkeypatch, value):
    monkeypatch.setenv("FASTGD_NUM_THREADS", value)
    with pytest.warns(RuntimeWarning, match=f"FASTGD_NUM_THREADS='{value}' is not a "
                                            "positive integer; ignored"):
        assert _threads.available_threads() == max(1, _build.kernels.openmp_max_threads())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_invalid_num_threads_does_not_stop_a_fit(monkeypatch):
    monkeypatch.setenv("FASTGD_NUM_THREADS", "abc")
    monkeypatch.setenv("FASTGD_MAX_SLICES", "2")  # read only when there are slices
    X = np.random.RandomState(0).normal(size=(2000, 100))
    y = (X[:, 0] > 0).astype(int)
    with pytest.warns(RuntimeWarning, match="FASTGD_NUM_THREADS"):
        clf = fastgd.MLPClassifier((100,), max_iter=1, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.5


def test_valid_num_threads(monkeypatch):
    for value, expected in (("3", 3), (" 2 ", 2), ("128", 128)):
        monkeypatch.setenv("FASTGD_NUM_THREADS", value)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _threads.available_threads() == expected
    monkeypatch.setenv("FASTGD_NUM_THREADS", "")  # empty: unset
    assert _threads.available_threads() == max(1, _build.kernels.openmp_max_threads())


def _import_with_kernels(value):
    env = {**os.environ, "FASTGD_KERNELS": value}
    code = "from fastgd import _build; print(_build.kernel_build())"
    # cwd away from the repository: there `import fastgd` would find the source
    # folder (no compiled kernels) before the installed package
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tempfile.gettempdir())


@pytest.mark.parametrize("build", ["baseline", "avx2"])
def test_fastgd_kernels_forces_a_build(build):
    """The choice is made at import, so each runs in a fresh interpreter."""
    done = _import_with_kernels(build)
    if build in _build.available_kernel_builds():
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == build
    else:  # e.g. avx2 on a CPU without it: a clear ImportError
        assert done.returncode != 0
        assert "ImportError: FASTGD_KERNELS='avx2'" in done.stderr


def test_fastgd_kernels_default_is_the_fastest():
    done = _import_with_kernels("")
    assert done.returncode == 0, done.stderr
    expected = "avx2" if "avx2" in _build.available_kernel_builds() else "baseline"
    assert done.stdout.strip() == expected


def test_fastgd_kernels_invalid_value():
    done = _import_with_kernels("avx9")
    assert done.returncode != 0
    offered = str(sorted(_build.available_kernel_builds()))
    assert f"ImportError: FASTGD_KERNELS='avx9': this installation and CPU offer " \
           f"{offered}" in done.stderr
