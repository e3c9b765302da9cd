"""A long listing shared with a forked copy of gobt, on a second CPU.

A whole-binary `-lv` does the same work for each of 16k functions of
cmd/go (capstone over its bytes, its params from DWARF): two processes
that each take half finish in a little over half the time. The child
gets the second half, already-read state (the mapped binary, the DWARF
index) shared by fork, and sends back its rows and the cache entries it
learnt; the parent prints its own half as it goes, then the child's.
Anything wrong in the child (an exception, a signal) and the parent does
the second half itself, so the output is the same either way.
"""

import marshal
import os
import sys

# Below this many items the fork costs more than it saves.
MIN_ITEMS = 2000


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def in_two(items, work, cache):
    """(n done so far, work(item)) for every item, in order. `cache` is
    the BinaryCache work() fills; the child's entries are put there too."""
    if len(items) < MIN_ITEMS or _cpus() < 2 or os.environ.get("GOBT_NO_SPLIT"):
        for i, item in enumerate(items):
            yield i, work(item)
        return
    # The count never goes back: the child's rows arrive after the
    # parent's estimate of both halves has run ahead.
    shown = 0
    for done, row in _in_two(items, work, cache):
        shown = max(shown, done)
        yield shown, row


def _in_two(items, work, cache):
    half = _halfway(items)
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(items[half:], work, cache, write_end)
    os.close(write_end)
    try:
        for i, item in enumerate(items[:half]):
            # The child keeps pace: count its half as done alongside.
            yield i * len(items) // half, work(item)
        got = _receive(read_end, pid)
    finally:
        os.close(read_end)
    if got is None:  # the child failed: its half, here
        for i, item in enumerate(items[half:], half):
            yield i, work(item)
        return
    rows, learnt = got
    for table, key, value in learnt:
        cache.put(table, key, value)
    for i, row in enumerate(rows, half):
        yield i, row


def _halfway(items):
    """Where to cut so that each side has about half the bytes to read."""
    sizes = [getattr(item, "size", 1) or 1 for item in items]
    total, run = sum(sizes), 0
    for i, size in enumerate(sizes):
        run += size
        if 2 * run >= total:
            return max(1, min(i + 1, len(items) - 1))
    return len(items) // 2


def _child(items, work, cache, fd):
    status = 1
    _die_with_parent()
    try:
        learnt = []
        put = cache.put

        def recording_put(table, key, value):
            learnt.append((table, key, value))
            put(table, key, value)

        cache.put = recording_put
        payload = marshal.dumps(([work(item) for item in items], learnt))
        status = 0
    except BaseException:
        payload = b""
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
    except OSError:
        status = 1
    os._exit(status)


def _die_with_parent():
    # A parent gone early (`gobt -lv ... | head`) must not leave its child
    # working for nobody: PR_SET_PDEATHSIG.
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _receive(fd, pid):
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if status != 0 or not chunks:
        return None
    try:
        return marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError):
        return None
