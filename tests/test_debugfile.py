"""Stripped binaries with their DWARF shipped apart, as distributions ship
them: found by .gnu_debuglink, in a /usr/lib/debug/.build-id tree, and from
a real debuginfod server on 127.0.0.1 (binary/debugfile.py).

Each session builds multiret with a GNU build ID of its own (so two test
runs at once never share a /usr/lib/debug/.build-id file), splits its
DWARF off with objcopy and strips it, as Debian's dh_strip does.
"""

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import ROOT, gobt, need, no_traceback
from toolchains import build

SCRIPT = "goentry:{bin}:main.classify {{ @s = sum(goarg(n)); @g = count(); @ok[goid > 0] = count(); }}"
CALLS = 200  # classify(0) .. classify(199): goarg(n) sums to 19900


@pytest.fixture(autouse=True)
def _no_debuginfod(monkeypatch):
    # Debian's profile.d may set it for login shells: only the debuginfod
    # test asks a server, its own.
    monkeypatch.delenv("DEBUGINFOD_URLS", raising=False)


class Split:
    """One build, split: the stripped binary and its debug file."""

    def __init__(self, folder, toolchain, tag, program="multiret"):
        self.build_id = os.urandom(20).hex()
        self.full = full = build(toolchain, os.path.join(ROOT, "tests/programs", program), folder,
                                 ldflags=f"-B=0x{self.build_id}", tag=tag)
        self.folder = os.path.join(folder, tag.strip("-"))
        os.makedirs(self.folder)
        self.debug = os.path.join(self.folder, "keep.debug")
        subprocess.run(["objcopy", "--only-keep-debug", full, self.debug], check=True)
        self.binary = os.path.join(self.folder, program)
        # --strip-all also drops .symtab, as Debian's binaries have none.
        subprocess.run(["objcopy", "--strip-all", f"--add-gnu-debuglink={self.debug}", full, self.binary],
                       check=True)
        self.build_id_path = f"/usr/lib/debug/.build-id/{self.build_id[:2]}/{self.build_id[2:]}.debug"


@pytest.fixture(scope="module")
def split(toolchains, tmp_path_factory):
    need("newest" in toolchains, "Go toolchain newest is missing (run scripts/setup)")
    need(shutil.which("objcopy") is not None, "objcopy is missing (binutils)")
    folder = str(tmp_path_factory.mktemp("debugfile"))
    made = Split(folder, toolchains["newest"], "-one"), Split(folder, toolchains["newest"], "-two")
    yield made
    for s in made:
        if os.path.exists(s.build_id_path):
            os.remove(s.build_id_path)


def hides_debuglink(s):
    """Move the debug file out of its debuglink place (back with the returned function)."""
    away = s.debug + ".away"
    os.rename(s.debug, away)
    return lambda: os.rename(away, s.debug)


def check_goarg_sum(proc):
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.search(rf"^@s: {CALLS * (CALLS - 1) // 2}$", proc.stdout, re.M), proc.stdout
    assert re.search(rf"^@g: {CALLS}$", proc.stdout, re.M), proc.stdout
    assert re.search(rf"^@ok\[1\]: {CALLS}$", proc.stdout, re.M), proc.stdout


def test_goarg_through_debuglink_and_a_fresh_dbgsym(split, bpf):
    s = split[0]
    back = hides_debuglink(s)
    try:
        # First with no debug file anywhere: the way forward, said once, and
        # "no DWARF" kept in gobt's caches...
        before = gobt("-lv", f"goentry:{s.binary}:main.classify")
        no_traceback(before)
        assert before.returncode == 0, before.stderr
        assert "has no DWARF" in before.stdout and "DEBUGINFOD_URLS" in before.stdout, before.stdout
        assert s.build_id in before.stdout
    finally:
        back()
    # ...which the debug file, once there, replaces.
    after = gobt("-lv", f"goentry:{s.binary}:main.classify")
    no_traceback(after)
    assert f"# DWARF from {s.debug} (by .gnu_debuglink)" in after.stdout, after.stdout
    assert re.search(r"^    n +int +\S", after.stdout, re.M), after.stdout
    check_goarg_sum(gobt("-e", SCRIPT.format(bin=s.binary), "-c", f"{s.binary} {CALLS}"))


def test_goarg_through_the_build_id_tree(split, bpf):
    s = split[0]
    path = s.build_id_path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copyfile(s.debug, path)
    back = hides_debuglink(s)
    try:
        listed = gobt("-lv", f"goentry:{s.binary}:main.classify")
        assert f"# DWARF from {path} (by build ID)" in listed.stdout, listed.stdout + listed.stderr
        check_goarg_sum(gobt("-e", SCRIPT.format(bin=s.binary), "-c", f"{s.binary} {CALLS}"))
    finally:
        os.remove(path)
        back()


def test_a_debug_file_not_of_this_binary_is_refused(split):
    one, two = split
    script = f'goentry:{one.binary}:main.classify {{ printf("%d\\n", goarg(n)); }}'
    back = hides_debuglink(one)
    # one's own DWARF changed by a byte, under its debuglink name (the CRC differs)...
    shutil.copyfile(one.debug + ".away", one.debug)
    with open(one.debug, "ab") as f:
        f.write(b"\0")
    # ...and two's DWARF under one's build ID (the build ID differs).
    os.makedirs(os.path.dirname(one.build_id_path), exist_ok=True)
    shutil.copyfile(two.debug, one.build_id_path)
    try:
        proc = gobt("--emit", "-e", script)
        no_traceback(proc)
        assert proc.returncode == 1, proc.stdout
        assert f"{one.build_id_path}: refused as the debug info of {one.binary}: its build ID is {two.build_id}" \
            in proc.stderr, proc.stderr
        assert re.search(rf"{re.escape(one.debug)}: refused as the debug info of .*CRC32", proc.stderr), proc.stderr
        assert "has no DWARF" in proc.stderr
    finally:
        os.remove(one.build_id_path)
        os.remove(one.debug)
        back()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def debuginfod(split, tmp_path_factory):
    """A real debuginfod on 127.0.0.1 serving split[0]'s debug file (not split[1]'s)."""
    need(shutil.which("debuginfod") is not None, "debuginfod is not installed (run scripts/setup)")
    served = str(tmp_path_factory.mktemp("served"))
    shutil.copyfile(split[0].debug, os.path.join(served, "multiret.debug"))
    port = _free_port()
    log = open(os.path.join(served, "..", "debuginfod.log"), "w")
    server = subprocess.Popen(["debuginfod", "-F", served, "-p", str(port), "-d", os.path.join(served, "..", "db")],
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # until its first scan has indexed the file
            try:
                with urllib.request.urlopen(f"{url}/buildid/{split[0].build_id}/debuginfo", timeout=5):
                    break
            except OSError:
                assert server.poll() is None, "debuginfod exited"
                assert time.monotonic() < deadline, "debuginfod did not serve the file within 60 s"
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_goarg_through_debuginfod(split, debuginfod, bpf, tmp_path):
    one, two = split
    backs = [hides_debuglink(one), hides_debuglink(two)]
    env = {"DEBUGINFOD_URLS": debuginfod, "DEBUGINFOD_CACHE_PATH": str(tmp_path / "client")}
    try:
        listed = gobt("-lv", f"goentry:{one.binary}:main.classify", env=env)
        no_traceback(listed)
        fetched = str(tmp_path / "client" / one.build_id / "debuginfo")
        assert f"# DWARF from {fetched} (from debuginfod)" in listed.stdout, listed.stdout + listed.stderr
        check_goarg_sum(gobt("-e", SCRIPT.format(bin=one.binary), "-c", f"{one.binary} {CALLS}", env=env))
        # A server without the file: a note, and gobt goes on without DWARF.
        missing = gobt("-lv", f"goentry:{two.binary}:main.classify", env=env)
        no_traceback(missing)
        assert missing.returncode == 0, missing.stderr
        assert f"no debug info for {two.binary} (build ID {two.build_id})" in missing.stderr, missing.stderr
        assert "has no DWARF" in missing.stdout
    finally:
        for back in backs:
            back()


def test_plain_list_of_uprobes_on_a_stripped_binary(split):
    # bpftrace finds no names in a stripped Go binary; pclntab has them.
    # (With the debug file beside it, bpftrace reads the debug file's .symtab.)
    s = split[0]
    back = hides_debuglink(s)
    try:
        proc = gobt("-l", f"uprobe:{s.binary}:main.*")
    finally:
        back()
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines()}
    assert {f"uprobe:{s.binary}:main.{f}" for f in ("classify", "work", "main")} <= listed, proc.stdout


@pytest.fixture(scope="module")
def split_others(toolchains, tmp_path_factory):
    need("newest" in toolchains, "Go toolchain newest is missing (run scripts/setup)")
    folder = str(tmp_path_factory.mktemp("others"))
    return {p: Split(folder, toolchains["newest"], f"-{p}", p) for p in ("inlinedsites", "methods", "ticker")}


def test_the_stripped_binary_lists_as_the_unstripped_one(split_others):
    # Params, types, results, inlined call sites: the same from the debug file.
    s = split_others["inlinedsites"]
    os.symlink(s.full, os.path.join(s.folder, "unstripped"))
    listings = []
    for name in ("unstripped", "inlinedsites"):
        lines = []
        for pattern in ("main.*", "main.bump"):  # bump: only inlined copies
            proc = gobt("-lv", f"uprobe:./{name}:{pattern}", cwd=s.folder)
            no_traceback(proc)
            assert proc.returncode == 0, proc.stderr
            lines += proc.stdout.replace(f"./{name}:", "BIN:").replace(f"./{name}", "BIN").splitlines()
        listings.append(lines)
    unstripped, stripped = listings
    source = f"# DWARF from {s.debug} (by .gnu_debuglink)"
    assert stripped.count(source) == 2, stripped
    assert "inlined in main.main" in "\n".join(unstripped) and "int  RAX" in "\n".join(unstripped), unstripped
    assert [line for line in stripped if line != source] == unstripped


def test_goarg_through_a_field_from_the_debug_file(split_others, bpf):
    s = split_others["methods"]
    script = f'uprobe:{s.binary}:main.(*T).M {{ printf("B=%d x=%d\\n", goarg(t.B), goarg(x)); }}'
    proc = gobt("-e", script, "-c", s.binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "B=2 x=10" in proc.stdout, proc.stdout


def test_with_p_the_debug_file_is_found_inside_the_process_root(split_others):
    # The process runs in a mount namespace of its own, where a tmpfs holds
    # the binary and its .debug/ folder: only /proc/PID/root reaches them.
    need(shutil.which("unshare") is not None, "unshare is missing (util-linux)")
    need(os.geteuid() == 0, "a mount namespace needs root")
    s = split_others["ticker"]
    inside = os.path.join(s.folder, "inside")
    os.makedirs(inside)
    setup = (f"mount -t tmpfs none {inside} && mkdir {inside}/.debug && cp {s.binary} {inside}/ticker && "
             f"cp {s.debug} {inside}/.debug/keep.debug && exec {inside}/ticker")
    proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", setup],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(f"/proc/{proc.pid}/root{inside}/.debug/keep.debug") or \
                os.readlink(f"/proc/{proc.pid}/exe") != f"{inside}/ticker":
            assert proc.poll() is None and time.monotonic() < deadline, "the namespaced ticker did not start"
            time.sleep(0.1)
        assert not os.path.exists(f"{inside}/ticker")  # not from here
        listed = gobt("-lv", "-p", str(proc.pid), f"goentry:{inside}/ticker:main.tick")
        no_traceback(listed)
        assert listed.returncode == 0, listed.stderr
        assert f"# DWARF from /proc/{proc.pid}/root{inside}/.debug/keep.debug (by .gnu_debuglink)" in listed.stdout, \
            listed.stdout
        assert re.search(r"^    i +int +RAX$", listed.stdout, re.M), listed.stdout
    finally:
        proc.kill()
        proc.wait()
