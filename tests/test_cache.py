"""The per-binary cache: same answers warm as cold, never stale, never fatal."""

import json
import os
import shutil
import subprocess
import sys

from conftest import gobt, no_traceback
from gobt.cache import read_sealed, write_atomic

PROGRAM = 'goret:{b}:main.classify /goarg(n) > 3/ {{ printf("%d %d %d\\n", goid, retval, goelapsed); }}'


def emit(binary, cache_home, *extra):
    # These tests are about the per-binary cache: drop whole programs
    # (test_programcache.py) so each run goes through the rewrite.
    shutil.rmtree(cache_home / "gobt" / "programs", ignore_errors=True)
    proc = gobt("--emit", *extra, "-e", PROGRAM.format(b=binary), env={"XDG_CACHE_HOME": str(cache_home)})
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def cache_files(cache_home):
    d = cache_home / "gobt" / "binaries"
    return sorted(d.iterdir()) if d.exists() else []


def test_warm_run_gives_the_cold_answer_without_reading_dwarf(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    cold = emit(binary, tmp_path)
    files = cache_files(tmp_path)
    assert len(files) == 1
    tables = json.loads(read_sealed(str(files[0])))["tables"]
    assert {"match", "code", "read", "goroutine"} <= set(tables)
    # A warm run needs neither pyelftools nor capstone: it must not import
    # them, even when the script is new and is parsed and rewritten.
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gobt", "--emit", "-e", PROGRAM.format(b=binary) + " "],
        capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)},
    )
    assert proc.stdout.split() == cold.split()
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "gobt.rewrite.probes" in imported
    assert not {m for m in imported if m.startswith(("elftools", "capstone"))}


def test_rebuilt_binary_never_gets_stale_offsets(go_build, tmp_path):
    a = go_build("go1.19", "tests/programs/multiret")
    b = go_build("go1.19", "tests/programs/multiret", gcflags="all=-N -l", tag="-noopt")
    target = tmp_path / "app"
    shutil.copy(a, target)
    first = emit(target, tmp_path)
    shutil.copy(b, target)  # same path, new contents
    second = emit(target, tmp_path)
    assert first != second
    assert second == emit(target, tmp_path / "fresh", "--no-cache")


def test_corrupt_or_foreign_cache_is_ignored_and_rebuilt(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    good = emit(binary, tmp_path)
    (path,) = cache_files(tmp_path)
    for junk in ("{not json", json.dumps({"format": 1, "identity": "someone else", "tables": {}}),
                 json.dumps([1, 2, 3]), ""):
        path.write_text(junk)
        assert emit(binary, tmp_path) == good
    for junk in ({"format": 1, "identity": "someone else", "tables": {}}, [1, 2, 3], "text"):
        write_atomic(str(path), junk)  # sealed, but not this binary's
        assert emit(binary, tmp_path) == good
    assert json.loads(read_sealed(str(path)))["tables"]["read"]


def test_no_cache_writes_nothing(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    emit(binary, tmp_path, "--no-cache")
    assert not (tmp_path / "gobt").exists() or not cache_files(tmp_path)


def test_concurrent_runs_agree(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "gobt", "--emit", "-e", PROGRAM.format(b=binary)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(6)
    ]
    outs = {p.communicate()[0] for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(outs) == 1
    (path,) = cache_files(tmp_path)
    json.loads(read_sealed(str(path)))  # whole, never torn
    assert not [f for f in path.parent.iterdir() if f.name.startswith(".tmp-")]
