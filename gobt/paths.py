"""Shared: finding an executable as a shell would (shutil.which, without
importing shutil: its imports cost a cold run ~3 ms)."""

import os


def which(name):
    """The path PATH gives for `name` (or `name` itself if it has a slash
    and is executable), or None."""
    if os.sep in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(folder or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None
