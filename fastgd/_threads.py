"""Threading policy: how many row slices a batch is cut into, how many threads run
them, and holding BLAS at one thread while the kernels run.

A kernel call cuts its rows into slices with private gradients summed in slice order,
so the slice count fixes the arithmetic; threads only decide who runs which slice.

Reproducibility guarantee. The slice count is ``slices_for(units, rows)``: a function
of the network's shape, the rows of the batch (or of the data, full-batch) and the
*slice cap*, which is ``FASTGD_MAX_SLICES`` if set, else the CPUs this process may use
(``usable_cpus``: its affinity mask, limited by its cgroup's CPU quota; read once per
process). So, with the same data, parameters and ``random_state``, in processes with
the same slice cap, the same kernel build (``FASTGD_KERNELS``) and the same BLAS:

* results are bit-identical whatever the thread count: ``FASTGD_NUM_THREADS``,
  ``OMP_NUM_THREADS``, threadpoolctl or joblib limits and the machine's load
  (``idle_cores``) change only how many threads share the slices;
* processes with different slice caps (another machine, a different ``taskset`` or
  container quota) may differ by rounding. Setting ``FASTGD_MAX_SLICES`` to the same
  value makes their slices the same; their results are then bit-identical too when
  they run the same kernel build and the same BLAS kernels (OpenBLAS picks its
  kernels by CPU model, and they round differently).

The cap is the machine's size, not the thread count, because more slices than threads
is slower (2 threads on 2 cores, 4 slices instead of 2: 7-15% slower) while the slice
count must not follow the thread count. The price: a process told to use fewer
threads than it has CPUs runs more slices than threads, e.g. joblib workers of a
parallel grid search, held at one thread each. On one thread, 2 / 4 / 8 / 16 slices
cost 1.07 / 1.18 / 1.47 / 2.0 times one slice (MNIST 784 -> 100 -> 10, batch 200;
the numbers below). Set ``FASTGD_MAX_SLICES`` to the thread count to avoid that, at
the cost of reproducibility against runs without it.
"""

import functools
import math
import os
import threading
import warnings
from contextlib import contextmanager

from fastgd._build import kernels as _kernels


# A batch is cut into row slices with private gradients; OpenMP threads share the
# slices, each calling single-threaded BLAS. A slice pays off only with enough work,
# since every batch costs two fork/joins of a few microseconds.
# Measured on the 2-core reference machine (benchmarks/NOTES.md).
_MIN_FLOPS_PER_SLICE = 500_000
_MIN_ROWS_PER_SLICE = 16
# The optimizer's update per parameter, in flops, when slices count sparse work.
_UPDATE_FLOPS_PER_PARAM = 10
# The kernels' limit (MAX_THREADS in _kernels.pyx).
_MAX_SLICES = 64
# At most this many parameters in all slices' gradients together (2**25: 128 MiB in
# float32), unless that leaves fewer than two slices: 784 -> 1024 -> 10 (814k
# parameters) may still use 41 slices, a 10M-parameter network 3.
_MAX_SLICED_PARAMS = 1 << 25
# The slice cap is the usable CPUs. Cutting finer than that is slower: two slices
# beat four on the 2-core reference machine for every shape of the benchmark grid (2
# threads, float32, ms per epoch with 2 / 4 slices: 50k x 100 -> (100, 100, 100) tanh
# 33.5 / 35.8; MNIST (100,) 124 / 143; 784 -> 1024, batch 1024 234 / 257): smaller
# slices mean smaller GEMMs and one more private gradient to sum per batch. Cutting as
# fine as the CPUs and the per-slice minimums allow pays on larger machines. Model:
# s slices on s cores take T1(s) / s + 2 barriers per batch, T1(s) the time of the
# same s slices on one thread (it includes summing the s private gradients, which the
# threads share by parameter range). T1 grows much slower than s (float32, us per
# batch, 1 / 2 / 4 / 8 / 16 slices on one thread, interleaved in one process, as
# `benchmarks/epoch_kernel.py --slices s --threads 1` does, 2026-12-02): relu,
# MNIST 784 -> 100 -> 10, batch 200: 1160 / 1243 / 1373 / 1702 / 2336, so 1.9x / 3.4x / 5.5x / 7.9x one slice; 784 -> 1024 ->
# 10, batch 1024 (ms): 42.7 / 47.4 / 49.3 / 57.2 / 72.8, so 1.8x / 3.5x / 6.0x /
# 9.4x; 100 -> (100, 100, 100) -> 10, batch 200: 575 / 571 / 559 / 814 / 1159, so
# 2.0x / 4.1x / 5.7x / 7.9x (batch 200 allows 12 slices). A barrier costs
# microseconds, and the minimums above keep a slice at >= 16 rows and >= 500k flops
# (~5-10 us of GEMM), so barriers stay small. Not modelled: memory bandwidth shared
# by many cores (summing s gradients reads s x parameters per batch), which
# _MAX_SLICED_PARAMS bounds.
#
# Small batches through one hidden layer split the hidden units, not the rows, into
# the slices: no private gradients to sum, and each core keeps its own parameters
# in cache. Every part then gathers the whole batch and computes the whole output
# layer, which costs more than it saves from about 64 rows on. 50k x 100 -> 100 ->
# 10, 2 threads, float32, ms per epoch, rows / units: batch 32 35.4 / 28.9, 48
# 28-30 / 27, 64 23.3 / 23-25, 128 18-21 / 21, 200 16.2 / 19.5 (float64: batch 32
# 63-67 / 54, 200 28 / 33); MNIST batch 200 117-124 / 137-140.
_SPLIT_UNITS = True
_SPLIT_UNITS_BELOW_ROWS = 64


def _positive_int_from_env(name):
    """The positive integer in environment variable ``name``; None if unset or empty.

    Anything else warns (RuntimeWarning, once per value) and counts as unset: a
    tuning knob should not stop a fit, as libgomp ignores a bad OMP_NUM_THREADS.
    """
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        warnings.warn(f"{name}={value!r} is not a positive integer; ignored",
                      RuntimeWarning, stacklevel=3)
        return None
    return number


def available_threads():
    """Threads fastgd may use: FASTGD_NUM_THREADS if set, else OpenMP's limit.

    OpenMP's limit follows OMP_NUM_THREADS, ``threadpoolctl.threadpool_limits`` and
    joblib's workers (which lower it so nested parallelism does not oversubscribe).
    A FASTGD_NUM_THREADS that is not a positive integer warns and is ignored.
    """
    threads = _positive_int_from_env("FASTGD_NUM_THREADS")
    if threads is not None:
        return threads
    return max(1, _kernels.openmp_max_threads())


# ---------------------------------------------------------------- usable CPUs
def _affinity_cpus():
    """CPUs in this process's affinity mask (os.cpu_count() where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _host_cpus():
    """CPUs of the whole machine, as /proc/loadavg counts them."""
    return os.cpu_count() or 1


def _cgroup_dirs(proc_cgroup, mountinfo):
    """(cgroup version, this process's cgroup directory, its mount point) for the
    hierarchies holding the CPU controller."""
    try:
        with open(proc_cgroup) as f:
            memberships = [line.rstrip("\n").split(":", 2) for line in f]
        with open(mountinfo) as f:
            mounts = [line.split() for line in f]
    except OSError:
        return []
    found = []
    for fields in mounts:
        if "-" not in fields:
            continue
        dash = fields.index("-")
        root, point = fields[3], fields[4]
        fstype, options = fields[dash + 1], fields[dash + 3].split(",")
        for entry in memberships:
            if len(entry) != 3:
                continue
            hierarchy, controllers, path = entry
            if fstype == "cgroup2" and hierarchy == "0" and not controllers:
                version = 2
            elif (fstype == "cgroup" and "cpu" in controllers.split(",")
                  and "cpu" in options):
                version = 1
            else:
                continue
            # path is relative to the hierarchy's root; the mount shows `root` of it.
            # Inside a container the two may not line up: then the mount is ours.
            inside = path == root or path.startswith(root.rstrip("/") + "/")
            rel = os.path.relpath(path, root) if inside else "."
            directory = os.path.normpath(os.path.join(point, rel))
            found.append((version, directory, point))
    return found


def _cgroup_cpu_limit(proc_cgroup="/proc/self/cgroup", mountinfo="/proc/self/mountinfo"):
    """CPUs the cgroup CPU bandwidth quota allows this process (a float), or None.

    The tightest quota of the process's cgroup and its ancestors up to the mount:
    cgroup v2 ``cpu.max`` ("max 100000" or "<quota> <period>"), v1
    ``cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``.
    """
    limits = []
    for version, directory, point in _cgroup_dirs(proc_cgroup, mountinfo):
        while True:
            try:
                if version == 2:
                    with open(os.path.join(directory, "cpu.max")) as f:
                        quota, period = f.read().split()[:2]
                else:
                    with open(os.path.join(directory, "cpu.cfs_quota_us")) as f:
                        quota = f.read().strip()
                    with open(os.path.join(directory, "cpu.cfs_period_us")) as f:
                        period = f.read().strip()
                if quota not in ("max", "-1") and int(period) > 0:
                    limits.append(int(quota) / int(period))
            except (OSError, ValueError):
                pass
            if directory == point or len(directory) <= len(point):
                break
            directory = os.path.dirname(directory)
    return min(limits) if limits else None


@functools.lru_cache(maxsize=None)
def usable_cpus():
    """CPUs this process may use: its affinity mask, limited by its cgroup CPU quota.

    A quota of 2.5 CPUs counts as 3: threads of a quota'd group are throttled
    together, so a third thread still adds half a CPU. Read once per process (the
    first call), so that the slice counts it sets do not change in mid-fit.
    """
    cpus = _affinity_cpus()
    quota = _cgroup_cpu_limit()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def slice_cap():
    """Most slices a kernel call is cut into: FASTGD_MAX_SLICES if set, else the
    usable CPUs; at most 64, the kernels' limit. A FASTGD_MAX_SLICES that is not a
    positive integer warns and is ignored."""
    cap = _positive_int_from_env("FASTGD_MAX_SLICES")
    if cap is None:
        cap = usable_cpus()
    return min(cap, _MAX_SLICES)


def slices_for(units, rows, cap=None, nnz_per_row=None):
    """Row slices for a batch of ``rows`` rows through the network ``units``.

    Enough rows and work per slice, at most ``cap`` (default ``slice_cap()``) slices:
    a function of the shape and the machine's size, never of the thread count, so
    it fixes the arithmetic (see the module docstring). ``nnz_per_row`` (sparse X:
    stored values per row, on average) counts the first layer's work by its
    nonzeros, plus the optimizer's pass over every parameter, which the slices
    share and which dominates for wide sparse input.
    """
    if cap is None:
        cap = slice_cap()
    weights = sum(a * b for a, b in zip(units[:-1], units[1:]))
    if nnz_per_row is None:
        work = rows * 6 * weights
    else:
        later = weights - units[0] * units[1]
        work = (rows * (4 * nnz_per_row * units[1] + 6 * later)
                + _UPDATE_FLOPS_PER_PARAM * (weights + sum(units[1:])))
    by_work = int(work // _MIN_FLOPS_PER_SLICE)
    # Every slice but the first has a private gradient to allocate and to sum per
    # batch; bound their memory on large machines, never below two slices.
    params = weights + sum(units[1:])
    by_memory = max(2, _MAX_SLICED_PARAMS // max(1, params))
    return max(1, min(cap, by_work, by_memory, rows // _MIN_ROWS_PER_SLICE))


def splits_units(units, rows, n_slices):
    """Whether batches of ``rows`` rows split the hidden units, not the rows, into
    the n_slices parts.

    Only for one hidden layer (see _kernels._train_epoch_unit_split); a function of
    the shape only, like the slice count.
    """
    return (_SPLIT_UNITS and len(units) == 3 and 1 < n_slices <= units[1]
            and rows < _SPLIT_UNITS_BELOW_ROWS)


# ------------------------------------------------------------------ idle cores
def _read_proc(path):
    """A small /proc file's bytes (os.read: a third of open()'s cost here)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def _running_threads_of_this_process():
    """Threads of this process in state R (running or runnable) right now."""
    running = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = _read_proc(f"/proc/self/task/{tid}/stat")
        except OSError:  # the thread ended meanwhile
            continue
        running += stat[stat.rindex(b")") + 2:][:1] == b"R"
    return running


def _runnable_tasks():
    """Runnable threads on the whole machine right now (/proc/loadavg), or None."""
    try:
        return int(_read_proc("/proc/loadavg").split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _idle_among_ours(cpus, mask, host, others):
    """Usable CPUs left idle by ``others`` runnable threads spread evenly over
    ``host`` CPUs, of which ``mask`` are in our affinity mask."""
    mask = min(mask, host)
    others_here = int(others * mask / host + 0.5)  # rounded to nearest
    return max(1, min(cpus, mask - others_here))


def idle_cores():
    """Usable CPUs not taken by other processes' runnable threads right now (an
    estimate; usable_cpus() where /proc is missing).

    Waiting at a per-batch barrier for a thread that another process keeps off its
    core costs a scheduler time slice (milliseconds) per batch, so fastgd only
    starts as many threads as there are idle cores. Our own threads (this reader,
    OpenMP or BLAS workers still spinning after the last call) do not count.

    Limitation: Linux counts runnable threads for the whole machine only
    (/proc/loadavg; in a container, the host's). Other threads are taken to be
    spread evenly over the machine's CPUs, so those on ours are their number times
    the share of the machine's CPUs in our affinity mask. That is exact for a process
    allowed on every CPU; under a narrow mask it can be wrong either way (pinned
    neighbours on our CPUs, or busy CPUs elsewhere), and other processes of our own
    cgroup eating into its quota are not seen. Per-CPU busy time from /proc/stat
    (27 us to read here) would see where the others run, but only as an average
    over the last interval, which our own threads filled.

    Cost, 2-CPU VM: 7 us on a quiet machine (one read of /proc/loadavg), plus ~14 us
    per thread of this process when other threads run.
    """
    cpus = usable_cpus()
    runnable = _runnable_tasks()
    if runnable is None:
        return cpus
    mask, host = _affinity_cpus(), max(1, _host_cpus())
    # This thread is one of the runnable ones: if the rest leave every usable CPU
    # idle, no need to look at our own threads.
    if _idle_among_ours(cpus, mask, host, max(0, runnable - 1)) >= cpus:
        return cpus
    # Our spinning workers may fall asleep between the readings: count them on both
    # sides and take the larger number.
    own_before = _running_threads_of_this_process()
    runnable = _runnable_tasks() or runnable
    own = max(own_before, _running_threads_of_this_process())
    return _idle_among_ours(cpus, mask, host, max(0, runnable - own))


def threads_for(n_slices):
    """OpenMP threads to share ``n_slices`` slices now."""
    if n_slices <= 1:
        return 1
    return max(1, min(n_slices, available_threads(), idle_cores()))


# OpenBLAS runs a product on one thread below 4 x 65536 multiply-adds (GEMM) and
# 4 x 2304 matrix elements (GEMV), its GEMM_MULTITHREAD_THRESHOLD; holding it at one
# thread there changes nothing and costs threadpoolctl's 30-50 us a call.
BLAS_ONE_THREAD_MULADDS = 4 * 65536
BLAS_ONE_THREAD_ELEMENTS = 4 * 2304


_blas_controller = None
_blas_lock = threading.Lock()
_blas_users = 0  # kernel calls now running under the limit, in any Python thread
_blas_limiter = None


def _let_go_of_openblas():
    # threadpoolctl >= 3.6 lets only the thread that last limited OpenBLAS change it
    # until that thread lets go; let go at once, so whichever thread leaves last
    # can restore the original limits.
    import threadpoolctl

    openblas = getattr(threadpoolctl, "OpenBLASController", None)
    if hasattr(openblas, "clear_controlling_thread"):
        openblas.clear_controlling_thread()


@contextmanager
def single_threaded_blas():
    """Context limiting BLAS to 1 thread while the kernels call it.

    Two thread pools on the same cores (OpenBLAS's spinning threads and ours) slow
    each other down several times over, so BLAS yields while we parallelise. It
    yields when we run one thread too: OpenBLAS's threaded GEMMs round differently,
    so results would depend on the thread count after all.
    Counted across Python threads: the first call in sets the limit, the last one
    out restores the original (nested per-thread limits would restore each
    other's and could leave BLAS single-threaded for good).
    """
    global _blas_controller, _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            if _blas_controller is None:
                from threadpoolctl import ThreadpoolController

                _blas_controller = ThreadpoolController()
            _blas_limiter = _blas_controller.limit(limits=1, user_api="blas")
            _let_go_of_openblas()
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _let_go_of_openblas()
                _blas_limiter = None


def holding_single_threaded_blas(solver):
    """Decorator: run a whole solver (epochs, L-BFGS, CG) under single_threaded_blas.

    Per kernel call is not enough: numpy's BLAS work between the calls (scipy's
    L-BFGS, preconditioning, scoring) otherwise leaves OpenBLAS threads spinning on
    the cores our OpenMP threads need (MNIST logistic gradient: 48 ms per pass inside
    a fit against 23 ms alone).
    """
    @functools.wraps(solver)
    def run(*args, **kwargs):
        with single_threaded_blas():
            return solver(*args, **kwargs)

    return run
