"""A background reader thread: the next batches are read and validated while the model
computes on the current one (Arrow/NumPy release the GIL for most of that work)."""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Optional, TypeVar

T = TypeVar("T")

_END = object()


class Prefetcher(Iterator[T]):
    """Iterates ``make()`` in a daemon thread, at most ``depth`` items ahead.

    An exception raised by the reader is raised again here, at the item where it happened.
    :meth:`close` (also on garbage collection) stops the thread; ``depth=0`` reads inline.

    Args:
        make: returns the iterator to read (called in the reader thread).
        depth: items read ahead (bounded: the memory of ``depth`` batches).
    """

    def __init__(self, make: Callable[[], Iterator[T]], depth: int = 2) -> None:
        self._stop = threading.Event()
        self._inline: Optional[Iterator[T]] = None
        self._done = False
        if depth <= 0:
            self._inline = make()
            return
        self._queue: "queue.Queue" = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, args=(make,), daemon=True,
                                        name="ctrkit-reader")
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, make) -> None:
        try:
            it = make()
            for item in it:
                if not self._put((item, None)):
                    break
            else:
                self._put((_END, None))
            close = getattr(it, "close", None)
            if close is not None:
                close()
        except BaseException as e:  # handed to the consumer, raised there
            self._put((_END, e))

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        if self._inline is not None:
            return next(self._inline)
        item, err = self._queue.get()
        if err is not None:
            self._done = True
            raise err
        if item is _END:
            self._done = True
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the reader thread (waits for its current item)."""
        self._done = True
        if self._inline is not None:
            close = getattr(self._inline, "close", None)
            if close is not None:
                close()
            return
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
