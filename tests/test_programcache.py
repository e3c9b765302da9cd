"""The warm path: a repeat run reuses the whole rewrite, and only when nothing
it read has changed."""

import json
import os
import shutil
import subprocess
import sys

from conftest import no_traceback
from gobt.cache import read_sealed, write_atomic

PROGRAM = 'goret:{b}:main.add {{ printf("%d + %d = %d\\n", goarg(a), goarg(b), retval); }}'


def run(cache_home, *args, cwd=None):
    """gobt --emit, and the modules it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gobt", "--emit", *args],
        capture_output=True, text=True, cwd=cwd, env={**os.environ, "XDG_CACHE_HOME": str(cache_home)},
    )
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    said = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("import time:"))
    return proc.stdout, said, imported


def rewrote(imported):
    return "gobt.rewrite.probes" in imported


def cached_once(go_build, tmp_path):
    """A program, gobt's output for it, and the cache entry that run left."""
    program = PROGRAM.format(b=go_build("go1.19", "tests/programs/inlined"))
    good = run(tmp_path, "-e", program)[0]
    (entry,) = (tmp_path / "gobt" / "programs").iterdir()
    return program, good, entry


def test_warm_run_skips_parse_and_rewrite_and_says_the_same(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/inlined")
    script = tmp_path / "add.gbt"
    script.write_text(PROGRAM.format(b=binary) + "\n")
    cold, cold_said, imported = run(tmp_path, str(script))
    # The first run in a fresh cache parses with the tables gobt ships:
    # no lark, and no tables made or kept.
    assert rewrote(imported) and "gobt.lang.lalr" in imported and "lark" not in imported
    assert not list((tmp_path / "gobt").glob("*tables*"))
    assert "main.add is inlined at 1 call site" in cold_said  # a warning, to be replayed
    warm, warm_said, imported = run(tmp_path, str(script))
    assert warm == cold and warm_said == cold_said
    assert not rewrote(imported)
    assert not {m for m in imported if m.split(".")[0] in ("lark", "elftools", "capstone", "click", "dataclasses")}
    assert "gobt.lang.script" not in imported
    # --no-cache neither reads nor needs the entry.
    again, _, imported = run(tmp_path, "--no-cache", str(script))
    assert again == cold and rewrote(imported)


def test_any_change_to_the_script_misses(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/inlined")
    program = PROGRAM.format(b=binary)
    cold = run(tmp_path, "-e", program)[0]
    out, _, imported = run(tmp_path, "-e", program + " ")
    assert rewrote(imported) and out != cold and out.split() == cold.split()


def test_a_binary_rewritten_in_place_misses_even_with_its_old_mtime(go_build, tmp_path):
    a = go_build("go1.19", "tests/programs/inlined")
    target = tmp_path / "app"
    shutil.copy(a, target)
    program = PROGRAM.format(b=target)
    run(tmp_path, "-e", program)
    assert not rewrote(run(tmp_path, "-e", program)[2])
    st = os.stat(target)
    at = target.read_bytes().index(b"unexpected return pc")  # a runtime message, in .rodata
    with open(target, "r+b") as f:  # same size, same inode
        f.seek(at)
        f.write(b"F")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime: only ctime tells
    assert os.stat(target).st_mtime_ns == st.st_mtime_ns
    assert rewrote(run(tmp_path, "-e", program)[2])


def test_a_relative_binary_is_resolved_in_each_working_directory(go_build, tmp_path):
    # The same text names different binaries from different directories.
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    shutil.copy(go_build("go1.19", "tests/programs/inlined"), one / "app")
    shutil.copy(go_build("go1.19", "tests/programs/inlined", gcflags="all=-N -l", tag="-noopt"), two / "app")
    program = PROGRAM.format(b="./app")
    first = run(tmp_path, "-e", program, cwd=one)[0]
    second, _, imported = run(tmp_path, "-e", program, cwd=two)
    assert rewrote(imported) and first != second
    assert run(tmp_path, "-e", program, cwd=one)[0] == first
    assert run(tmp_path, "-e", program, cwd=two)[0] == second


def test_corrupt_entries_are_ignored_and_replaced(go_build, tmp_path):
    program, good, entry = cached_once(go_build, tmp_path)
    for junk in ("{not json", "[]", '{"key": 1}', "", '{"key": null, "targets": [], "rewritten": {}}'):
        entry.write_text(junk)
        out, _, imported = run(tmp_path, "-e", program)
        assert out == good and rewrote(imported)
    assert not rewrote(run(tmp_path, "-e", program)[2])


def test_cache_folders_keep_only_the_most_recently_used(tmp_path):
    from gobt.cache import prune, touch_used

    names = [f"{i:08x}-{i}.json" for i in range(10)]  # named as ProgramCache names its files
    for i, name in enumerate(names):
        path = tmp_path / name
        path.write_text("{}")
        os.utime(path, ns=(i * 10**9, i * 10**9))
    (tmp_path / ".tmp-writing").write_text("")  # another gobt's write in flight
    (tmp_path / "notes.json").write_text("")  # not gobt's: never removed
    os.utime(tmp_path / "notes.json", ns=(0, 0))
    touch_used(tmp_path / names[0])  # used just now: the newest
    prune(tmp_path, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".tmp-writing", "notes.json", names[0], *names[7:]])


def test_entries_of_the_right_key_but_the_wrong_shape_miss(go_build, tmp_path):
    program, good, path = cached_once(go_build, tmp_path)
    entry = json.loads(read_sealed(str(path)))
    broken = [
        {**entry, "targets": [["x"]]},
        {**entry, "targets": 7},
        {**entry, "rewritten": {**entry["rewritten"], "surprise": 1}},
        {**entry, "rewritten": {k: v for k, v in entry["rewritten"].items() if k != "program"}},
        {**entry, "rewritten": {**entry["rewritten"], "messages": None}},
        {**entry, "rewritten": {**entry["rewritten"], "probe_count": "3"}},
        {**entry, "rewritten": {**entry["rewritten"], "program": ["not", "text"]}},
    ]
    for junk in broken:
        write_atomic(str(path), junk)  # sealed: only its shape is wrong
        out, _, imported = run(tmp_path, "-e", program)
        assert out == good and rewrote(imported), junk


def test_a_cache_someone_else_can_write_is_not_used(go_build, tmp_path):
    # Root running gobt with a user's XDG_CACHE_HOME (sudo keeps it) must
    # not run a program that user left there.
    program, good, entry = cached_once(go_build, tmp_path)
    planted = json.loads(read_sealed(str(entry)))
    planted["rewritten"]["program"] = 'BEGIN { system("touch /tmp/gobt-pwned"); }'
    write_atomic(str(entry), planted)
    os.chown(entry, 65534, 65534)  # an entry another user wrote
    out, _, imported = run(tmp_path, "-e", program)
    assert out == good and rewrote(imported)
    os.chown(tmp_path / "gobt", 65534, 65534)  # the whole folder is another user's
    out, said, imported = run(tmp_path, "-e", program)
    assert out == good and rewrote(imported)
    assert "not using the cache in" in said and "uid 65534" in said
    os.chown(tmp_path / "gobt", 0, 0)
    os.chmod(tmp_path / "gobt", 0o777)  # or anyone may write to it
    assert "not using the cache in" in run(tmp_path, "-e", program)[1]


def test_a_repeat_listing_does_not_read_the_binary(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/inlined")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    outs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "gobt", "-lv", f"uprobe:{binary}:main.add"],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        outs.append((proc.stdout, {line.split("|")[-1].strip() for line in proc.stderr.splitlines()}))
    (cold, cold_imported), (warm, warm_imported) = outs
    assert "main.add  1 RET, inlined at 1 call site" in cold and warm == cold
    assert "gobt.listing" in cold_imported and "gobt.listing" not in warm_imported
