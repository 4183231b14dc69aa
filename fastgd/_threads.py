"""Threading policy: how many row slices a batch is cut into, how many threads run
them, and holding BLAS at one thread while the kernels run.

The slice count fixes the arithmetic (private gradients summed in slice order), so it
depends on the problem's shape only; the thread count only decides who runs the
slices, so results are bit-identical whatever it is.
"""

import functools
import os
import threading
from contextlib import contextmanager

from fastgd._build import kernels as _kernels


# Threading policy. A batch is cut into row slices with private gradients (the
# arithmetic depends on the slice count alone, which depends on the problem's shape
# alone, so results are reproducible on any machine and under any load); OpenMP
# threads share the slices, each calling single-threaded BLAS. A slice pays off only
# with enough work, since every batch costs two fork/joins of a few microseconds.
# Measured on the 2-core reference machine (benchmarks/NOTES.md).
_MIN_FLOPS_PER_SLICE = 500_000
_MIN_ROWS_PER_SLICE = 16
# Two slices beat four on the 2-core reference machine for every shape of the
# benchmark grid (2 threads, float32, ms per epoch with 2 / 4 slices: 50k x 100 ->
# (100, 100, 100) tanh 33.5 / 35.8; MNIST (100,) 124 / 143; 784 -> 1024, batch 1024
# 234 / 257): smaller slices mean smaller GEMMs and one more private gradient to
# sum per batch. The cost: at most two cores per batch on larger machines.
_MAX_SLICES = 2
# Small batches through one hidden layer split the hidden units, not the rows, into
# the slices: no private gradients to sum, and each core keeps its own parameters
# in cache. Every part then gathers the whole batch and computes the whole output
# layer, which costs more than it saves from about 64 rows on. 50k x 100 -> 100 ->
# 10, 2 threads, float32, ms per epoch, rows / units: batch 32 35.4 / 28.9, 48
# 28-30 / 27, 64 23.3 / 23-25, 128 18-21 / 21, 200 16.2 / 19.5 (float64: batch 32
# 63-67 / 54, 200 28 / 33); MNIST batch 200 117-124 / 137-140.
_SPLIT_UNITS = True
_SPLIT_UNITS_BELOW_ROWS = 64


def available_threads():
    """Threads fastgd may use: FASTGD_NUM_THREADS if set, else OpenMP's limit.

    OpenMP's limit follows OMP_NUM_THREADS, ``threadpoolctl.threadpool_limits`` and
    joblib's workers (which lower it so nested parallelism does not oversubscribe).
    """
    env = os.environ.get("FASTGD_NUM_THREADS")
    if env:
        return max(1, int(env))
    return max(1, _kernels.openmp_max_threads())


def slices_for(units, rows):
    """Row slices for a batch of ``rows`` rows through the network ``units``.

    A function of the shape only (never of the machine), so it fixes the arithmetic.
    """
    flops_per_row = 6 * sum(a * b for a, b in zip(units[:-1], units[1:]))
    by_work = int(rows * flops_per_row // _MIN_FLOPS_PER_SLICE)
    return max(1, min(_MAX_SLICES, by_work, rows // _MIN_ROWS_PER_SLICE))


def splits_units(units, rows, n_slices):
    """Whether batches of ``rows`` rows split the hidden units, not the rows, into
    the n_slices parts.

    Only for one hidden layer (see _kernels._train_epoch_unit_split); a function of
    the shape only, like the slice count.
    """
    return (_SPLIT_UNITS and len(units) == 3 and 1 < n_slices <= units[1]
            and rows < _SPLIT_UNITS_BELOW_ROWS)


def _running_threads_of_this_process():
    """Threads of this process in state R (running or runnable) right now."""
    running = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        running += stat[stat.rindex(")") + 2] == "R"
    return running


def idle_cores():
    """Cores not taken by other processes' runnable threads right now (Linux; else all).

    Waiting at a per-batch barrier for a thread that another process keeps off its
    core costs a scheduler time slice (milliseconds) per batch, so fastgd only
    starts as many threads as there are idle cores. Our own threads (this reader,
    OpenMP or BLAS workers still spinning after the last call) do not count.
    """
    cores = os.cpu_count() or 1
    try:
        # Our spinning workers may fall asleep between the two readings: count them
        # on both sides and take the larger number.
        own_before = _running_threads_of_this_process()
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        own = max(own_before, _running_threads_of_this_process())
        others = running - own
    except (OSError, ValueError, IndexError):
        return cores
    return max(1, cores - max(0, others))


def threads_for(n_slices):
    """OpenMP threads to share ``n_slices`` slices now."""
    if n_slices <= 1:
        return 1
    return max(1, min(n_slices, available_threads(), idle_cores()))


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
