"""Root's gobt on a cache folder another user owns (sudo keeps
XDG_CACHE_HOME): whatever that user does to the folder during a run, gobt
writes, renames and removes files only in the folder it opened."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import BUILD_DIR, GOBT_CMD, need, no_traceback
from toolchains import build_package

NOBODY = 65534

# The other user: once told root's gobt's pid, waits until that gobt has
# made its binaries/ folder (it is then reading the binary), then `at`
# seconds more; moves gobt/ aside and puts their own folder in its place,
# whose programs/ and binaries/ lead to root's folders. Prints whether
# root's gobt was still running then.
ATTACK = r"""
import os, sys, time
home, decoy, at = sys.argv[1], sys.argv[2], float(sys.argv[3])
print("ready", flush=True)
pid = int(sys.stdin.readline())
while not os.path.isdir(os.path.join(home, "gobt", "binaries")):
    time.sleep(0.001)
time.sleep(at)
os.rename(os.path.join(home, "gobt"), os.path.join(home, "gobt-was"))
os.mkdir(os.path.join(home, "gobt"))
for sub in ("programs", "binaries"):
    os.symlink(os.path.join(decoy, sub), os.path.join(home, "gobt", sub))
try:
    os.kill(pid, 0)
    alive = True
except ProcessLookupError:
    alive = False
except PermissionError:
    alive = True
print("alive" if alive else "done")
"""


def _decoy(root):
    """Root's own folders, full of files named as gobt names its entries,
    older than anything gobt writes: what a prune would remove first."""
    files = {}
    for sub, count, name in (("programs", 300, "{:08x}-{}.json"), ("binaries", 100, "{:032x}.json")):
        folder = os.path.join(root, sub)
        os.makedirs(folder)
        for i in range(count):
            path = os.path.join(folder, name.format(i, i))
            with open(path, "w") as f:
                f.write(f"root's file {i}\n")
            os.utime(path, ns=(i * 10**9, i * 10**9))
            files[path] = f"root's file {i}\n"
    return files


def _as_it_was(files, root):
    now = {os.path.join(d, n) for d, _, names in os.walk(root) for n in names}
    assert now == set(files), f"added {sorted(now - set(files))[:3]}, removed {sorted(set(files) - now)[:3]}"
    for path, text in files.items():
        with open(path) as f:
            assert f.read() == text, path


@pytest.mark.parametrize("at", [0, 0.05, 0.2, 0.6])
def test_a_swapped_cache_folder_leads_nowhere(toolchains, at):
    need(os.geteuid() == 0, "the race needs root and a second uid")
    need("newest" in toolchains, "the newest Go toolchain is missing (run scripts/setup)")
    go = build_package(toolchains["newest"], "cmd/go", BUILD_DIR)  # a cold rewrite long enough to race
    top = tempfile.mkdtemp(prefix="gobt-race-")
    try:
        os.chmod(top, 0o755)
        home = os.path.join(top, "home")  # the other user's XDG_CACHE_HOME
        os.mkdir(home)
        os.chown(home, NOBODY, NOBODY)
        os.mkdir(os.path.join(home, "gobt"))  # root's, from an earlier run
        decoy = os.path.join(top, "decoy")
        files = _decoy(decoy)
        env = {**os.environ, "XDG_CACHE_HOME": home}
        env.pop("GOBT_NO_CACHE", None)
        attacker = subprocess.Popen([sys.executable, "-c", ATTACK, home, decoy, str(at)], user=NOBODY, group=NOBODY,
                                    extra_groups=[], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, cwd="/")
        assert attacker.stdout.readline() == "ready\n", attacker.stderr.read()
        run = subprocess.Popen([*GOBT_CMD, "--emit", "-e", f"goret:{go}:main.main {{ @[goid] = count(); }}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        attacker.stdin.write(f"{run.pid}\n")
        attacker.stdin.flush()
        out, err = run.communicate(timeout=300)
        proc = subprocess.CompletedProcess(run.args, run.returncode, out, err)
        said, why = attacker.communicate(timeout=60)
        no_traceback(proc)
        assert proc.returncode == 0, proc.stderr
        assert "uprobe:" in proc.stdout
        assert attacker.returncode == 0, why
        # The swap came while root's gobt ran (else the test proves nothing);
        # the later ones may come after it on a fast machine.
        if at == 0:
            need(said.strip() == "alive", "gobt finished before the swap")
        _as_it_was(files, decoy)
        # Nothing of gobt's in the other user's folder either.
        assert sorted(os.listdir(os.path.join(home, "gobt"))) == ["binaries", "programs"]
        assert all(os.path.islink(os.path.join(home, "gobt", sub)) for sub in ("binaries", "programs"))
    finally:
        shutil.rmtree(top)
