"""fastgd.dask out of core: data on disk larger than the workers' memory.

Run:  python benchmarks/dask_out_of_core.py [--gb 3] [--memory-limit 1GiB]
      (needs the [dask] extra and --gb of free disk under --dir; deletes the data
      at the end unless --keep)

Writes a float64 X (and y) as .npy stacks (``da.to_npy_stack``, chunk by chunk),
opens them with ``da.from_npy_stack`` (memory-mapped chunks), starts a LocalCluster
of 2 single-thread workers with ``memory_limit`` each, and fits with the default
``persist='auto'``: the data do not fit, so fastgd.dask streams the partitions from
disk on every pass. A thread samples the resident set size (RSS) of every worker
and of this process every 50 ms; the table gives the peaks against the data size.
"""

import argparse
import os
import shutil
import threading
import time
import warnings

import numpy as np
import psutil
from distributed import Client, LocalCluster

import dask
import dask.array as da
import fastgd.dask as fdask


class PeakRSS:
    """Peak RSS of some processes, sampled in a thread."""

    def __init__(self, pids, every=0.05):
        self.procs = {pid: psutil.Process(pid) for pid in pids}
        self.peak = dict.fromkeys(pids, 0)
        self.peak_sum = 0
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            total = 0
            for pid, proc in self.procs.items():
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                self.peak[pid] = max(self.peak[pid], rss)
                total += rss
            self.peak_sum = max(self.peak_sum, total)
            time.sleep(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def write_data(root, gb, d, chunk_rows):
    n = int(gb * 1e9 / (8 * d)) // chunk_rows * chunk_rows
    rs = da.random.RandomState(0)
    X = rs.standard_normal((n, d), chunks=(chunk_rows, d))
    w = np.random.RandomState(1).randn(d)
    y = ((X @ w) + da.random.RandomState(2).standard_normal(n, chunks=chunk_rows)
         > 0).astype(np.float64)
    with dask.config.set(scheduler="threads", num_workers=2):
        da.to_npy_stack(os.path.join(root, "X"), X)  # chunk by chunk: bounded memory
        da.to_npy_stack(os.path.join(root, "y"), y)
    return n


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=3.0)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--memory-limit", default="1GiB")
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--dir", default="/tmp/fastgd_dask_out_of_core")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    try:
        t = time.perf_counter()
        n = write_data(args.dir, args.gb, args.features, args.chunk_rows)
        on_disk = sum(os.path.getsize(os.path.join(r, f))
                      for r, _, fs in os.walk(args.dir) for f in fs)
        print("wrote %d x %d float64 (%.2f GB on disk) in %.0f s"
              % (n, args.features, on_disk / 1e9, time.perf_counter() - t))
        X = da.from_npy_stack(os.path.join(args.dir, "X"))  # memory-mapped chunks
        y = da.from_npy_stack(os.path.join(args.dir, "y"))
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None,
                          memory_limit=args.memory_limit) as cluster, \
                Client(cluster) as client:
            client.wait_for_workers(2)
            workers = list(client.run(os.getpid).values())
            limit = sum(w["memory_limit"] for w in
                        client.scheduler_info(n_workers=-1)["workers"].values())
            idle = max(psutil.Process(p).memory_info().rss for p in workers) / 1e9
            rows = []
            for name, est in [
                ("LogisticRegression lbfgs, %d it" % args.max_iter,
                 fdask.LogisticRegression(max_iter=args.max_iter)),
                ("LinearRegression (TSQR, 3 passes)", fdask.LinearRegression()),
                ("LogisticRegression adam, 1 epoch",
                 fdask.LogisticRegression(solver="adam", max_iter=1)),
            ]:
                with warnings.catch_warnings(record=True) as caught, \
                        PeakRSS(workers + [os.getpid()]) as rss:
                    warnings.simplefilter("always")
                    t = time.perf_counter()
                    est.fit(X, y)
                    elapsed = time.perf_counter() - t
                streamed = any("streamed" in str(w.message) for w in caught)
                rows.append((name, streamed, elapsed,
                             max(rss.peak[p] for p in workers) / 1e9,
                             rss.peak[os.getpid()] / 1e9, rss.peak_sum / 1e9))
        print()
        print("data on disk: %.2f GB; 2 workers x memory_limit %s (sum %.2f GB); "
              "an idle worker's RSS: %.2f GB; chunks of %d rows (%.0f MB)"
              % (on_disk / 1e9, args.memory_limit, limit / 1e9, idle, args.chunk_rows,
                 args.chunk_rows * args.features * 8 / 1e6))
        print()
        print("| fit | streamed | time (s) | peak RSS per worker (GB) | "
              "peak RSS client (GB) | peak RSS all (GB) |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print("| %s | %s | %.1f | %.2f | %.2f | %.2f |" % r)
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
