"""A small pool of threads for element-wise NumPy work on large arrays.

NumPy's matrix products run on the BLAS library's own threads, but its
element-wise ufuncs run on the calling thread only. A ufunc releases the GIL
while its inner loop runs, so ordinary Python threads that each call ufuncs
on their own slices of large arrays do run in parallel. The optimizers use
this for their updates, which are long sequences of such calls.

The number of threads is, in order: what :func:`set_num_threads` set, the
environment variable ``NPGAN_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS``, and the number of CPUs this process may run on; at
most 8. With one thread nothing is started and the work runs on the caller.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["get_num_threads", "set_num_threads", "run"]

_MAX_THREADS = 8
_lock = threading.Lock()
_requested = None
_pool = None
_pool_size = 0


def _from_environment():
    for name in ("NPGAN_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def get_num_threads():
    """Threads used for element-wise work, an int in [1, 8]."""
    n = _requested if _requested is not None else _from_environment()
    return max(1, min(_MAX_THREADS, n))


def set_num_threads(n):
    """Use ``n`` threads from now on; None returns to the default.

    Parameters
    ----------
    n : int or None
        At least 1; values above 8 count as 8.
    """
    global _requested
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"set_num_threads: n must be an integer >= 1, got {n!r}")
    _requested = n


def _executor(workers):
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=True)
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="npgan")
            _pool_size = workers
        return _pool


def _forget_pool_after_fork():
    # A forked child has none of the parent's threads: start afresh.
    global _pool, _pool_size, _lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _with_errstate(err, task):
    # numpy's floating-point error state belongs to a thread; carry the
    # caller's into the worker so that np.errstate(...) around a call works.
    with np.errstate(**err):
        task()


def run(tasks):
    """Run callables in parallel, the first on the calling thread.

    Returns when all have finished; the first exception raised by any of them
    is raised again here.

    Parameters
    ----------
    tasks : list of callables taking no argument
    """
    if len(tasks) == 1:
        tasks[0]()
        return
    err = np.geterr()
    pool = _executor(len(tasks) - 1)
    futures = [pool.submit(_with_errstate, err, task) for task in tasks[1:]]
    first = None
    try:
        tasks[0]()
    except BaseException as exc:  # re-raised below, once the workers are done
        first = exc
    for future in futures:
        exc = future.exception()
        if first is None and exc is not None:
            first = exc
    if first is not None:
        raise first
