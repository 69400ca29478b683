"""One native thread per scoring thread: what a server scoring several requests at once needs."""

import threading

_threads = threading.local()


def one_native_thread() -> None:
    """Native thread pools (OpenMP in tree models, BLAS) use one thread in the calling thread.

    A server scores several requests at once: a tree model's OpenMP threads per request then
    outnumber the cores, and their barriers wait for descheduled threads (measured on 2 busy
    cores: a 1,000-row request 0.5-1.4 s with the default pool, 70-80 ms with one thread).
    Parallelism comes from concurrent requests and `--workers`. OpenMP's setting belongs to
    the thread that makes it, so each scoring thread makes it once.
    """
    if getattr(_threads, "limited", False):
        return
    _threads.limited = True
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # comes with scikit-learn; without it there is no pool to limit
        return
    threadpool_limits(limits=1)
