"""Where gobt keeps what it can reuse between runs."""

import os

_disabled = False


def disable():
    global _disabled
    _disabled = True


def cache_dir():
    """$XDG_CACHE_HOME/gobt (default ~/.cache/gobt), created on demand.

    None when caching is off or the directory cannot be made: gobt then
    simply does the work again.
    """
    if _disabled or os.environ.get("GOBT_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "gobt")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    return path
