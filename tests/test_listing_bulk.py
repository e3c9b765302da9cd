"""-lv over many functions: the one-pass DWARF index and bulk disassembly
give the listing the per-function path gives, and a progress line shows on
a terminal only.

The reference is computed in the same test, by the slow general path
(bulk=False: DWARF searched per function, as before the index), on real
builds of gofmt by every toolchain and of cmd/go for arm64.
"""

import os
import pty
import subprocess
import threading

import pytest

from conftest import BUILD_DIR, GOBT_CMD, need
from toolchains import build_package

pytestmark = pytest.mark.bpftrace_independent


@pytest.fixture(scope="module")
def bpftrace_facts():
    from gobt.run.bpftrace import find_bpftrace, probe_bpftrace

    try:
        return probe_bpftrace(find_bpftrace())
    except Exception as e:  # noqa: BLE001
        need(False, f"no usable bpftrace: {e}")


def _listing(pattern, bpftrace_facts, bulk):
    from gobt import cache
    from gobt.listing import list_probes

    cache.disable()  # each side computes its rows
    lines = []
    listed, _ = list_probes(pattern, True, bpftrace_facts, out=lines.append, bulk=bulk)
    assert listed
    return lines


@pytest.mark.parametrize("chain", ["go1.15", "go1.19", "go1.23", "newest"])
def test_bulk_listing_is_the_per_function_listing(toolchains, chain, bpftrace_facts):
    need(chain in toolchains, f"Go toolchain {chain} is missing (run scripts/setup)")
    gofmt = build_package(toolchains[chain], "cmd/gofmt", BUILD_DIR)
    for pattern in (f"uprobe:{gofmt}:*", f"goret:{gofmt}:go/*"):
        slow = _listing(pattern, bpftrace_facts, bulk=False)
        fast = _listing(pattern, bpftrace_facts, bulk=True)
        assert len(fast) > 500
        assert fast == slow
    # Params with types from DWARF, inlined call sites and assembly (no
    # DWARF entry) are all in there.
    text = "\n".join(fast)
    assert "at return" in text and "inlined at" in text


def test_bulk_listing_arm64(toolchains, bpftrace_facts):
    need("newest" in toolchains, "the newest Go toolchain is missing (run scripts/setup)")
    go = build_package(toolchains["newest"], "cmd/go", BUILD_DIR, goarch="arm64")
    pattern = f"uprobe:{go}:runtime.m*"
    assert _listing(pattern, bpftrace_facts, bulk=True) == _listing(pattern, bpftrace_facts, bulk=False)


def test_bulk_decoding_is_capstones(toolchains):
    """decode.Decoded reads libcapstone's instructions as the binding gives them."""
    import capstone

    from gobt.binary import decode
    from gobt.binary.decode import _disassembler
    from gobt.binary.gobinary import GoBinary

    # The cs_insn layout decode.py reads is the binding's own: test_decode.py.
    assert decode._library(), "libcapstone should load directly"
    need("newest" in toolchains, "the newest Go toolchain is missing (run scripts/setup)")
    for goarch in ("amd64", "arm64"):
        binary = GoBinary(build_package(toolchains["newest"], "cmd/gofmt", BUILD_DIR, goarch=goarch))
        cs = _disassembler(binary.arch)
        for fn in binary.symbols.match("*")[::7]:
            code = binary.code(fn)
            want = list(cs.disasm_lite(bytes(code), fn.start))
            got = decode.Decoded(binary.arch, code, fn.start)
            assert got.ids is not None, "the direct path, not the binding's"
            assert list(zip(got.addresses, got.sizes)) == [(a, s) for a, s, _m, _o in want], fn.name
            assert [got.text(i) for i in range(len(got))] == [(m, o) for _a, _s, m, o in want], fn.name


def _run_with_stderr_on_a_tty(args, env):
    """(stdout, what the terminal on stderr saw, exit code)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([*GOBT_CMD, *args], stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()))
    reader.start()
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: gobt, the terminal's last writer, is gone
            break
        if not chunk:
            break
        seen += chunk
    reader.join(timeout=300)
    proc.wait(timeout=300)
    os.close(master)
    return out[0].decode(), seen.decode(errors="replace"), proc.returncode


def test_progress_line_only_on_a_terminal(toolchains, tmp_path):
    need("newest" in toolchains, "the newest Go toolchain is missing (run scripts/setup)")
    gofmt = build_package(toolchains["newest"], "cmd/gofmt", BUILD_DIR)
    args = ["--no-cache", "-lv", f"uprobe:{gofmt}:*"]
    # Shown from the start (not after a second): the test must not depend
    # on how busy the machine is.
    env = {**os.environ, "GOBT_PROGRESS_AFTER": "0", "XDG_CACHE_HOME": str(tmp_path)}
    out_tty, terminal, rc = _run_with_stderr_on_a_tty(args, env)
    assert rc == 0, terminal
    assert "\r\x1b[Kgobt: " in terminal and " functions (" in terminal
    assert terminal.endswith("\r\x1b[K")  # cleared at the end
    piped = subprocess.run([*GOBT_CMD, *args], capture_output=True, text=True, env=env, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "functions (" not in piped.stderr and "\r" not in piped.stderr
    assert piped.stdout == out_tty
    assert out_tty.count("\n") > 1000


def _cached_tables(cache_home):
    import json

    from gobt.cache import read_sealed

    folder = os.path.join(cache_home, "gobt", "binaries")
    tables = {}
    for name in os.listdir(folder):
        text = read_sealed(os.path.join(folder, name))
        assert text is not None, name
        for table, rows in json.loads(text)["tables"].items():
            tables.setdefault(table, {}).update(rows)
    return tables


def test_listing_split_in_two_is_the_listing_in_one(toolchains, tmp_path):
    """A long -lv is shared with a forked child (split.py): the same bytes
    in the same order as one process makes them, and what the child learnt
    reaches the cache as if one process had done it all."""
    need("newest" in toolchains, "the newest Go toolchain is missing (run scripts/setup)")
    from gobt.split import MIN_ITEMS

    gofmt = build_package(toolchains["newest"], "cmd/gofmt", BUILD_DIR)
    args = ["-lv", f"uprobe:{gofmt}:*"]
    runs = {}
    for mode, extra in (("one", {"GOBT_NO_SPLIT": "1"}), ("two", {})):
        home = tmp_path / mode
        env = {k: v for k, v in os.environ.items() if k != "GOBT_NO_SPLIT"}
        env.update(extra, XDG_CACHE_HOME=str(home))
        done = subprocess.run([*GOBT_CMD, *args], capture_output=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        runs[mode] = (done.stdout, _cached_tables(str(home)))
    (one, one_cache), (two, two_cache) = runs["one"], runs["two"]
    functions = [line for line in one.decode().splitlines() if line.startswith("uprobe:")]
    assert len(functions) >= MIN_ITEMS  # long enough to be split
    assert two == one
    for table in ("code", "lv"):
        assert set(two_cache[table]) == set(one_cache[table])
        assert len(two_cache[table]) >= MIN_ITEMS
    assert two_cache["code"] == one_cache["code"]


def test_a_whole_binary_listing_survives_what_it_cannot_read(toolchains, tmp_path, bpftrace_facts, monkeypatch):
    """Unreadable DWARF, or a type the register ABI cannot place, is said
    in the rows of each function it touches; the listing goes on (the
    one-pass index and the shared layouts must not turn it into an error
    that stops at the first function)."""
    need("newest" in toolchains, "the newest Go toolchain is missing (run scripts/setup)")
    import shutil
    import struct

    from gobt.binary.gobinary import GoBinary

    gofmt = build_package(toolchains["newest"], "cmd/gofmt", BUILD_DIR)
    # A real binary whose .debug_info says it is compressed with an unknown
    # algorithm (Elf64_Chdr.ch_type = 2).
    broken = tmp_path / "gofmt-broken-dwarf"
    shutil.copy(gofmt, broken)
    _type, _addr, offset, _size = GoBinary(str(broken))._sections[".debug_info"]
    with open(broken, "r+b") as f:
        f.seek(offset)
        assert struct.unpack("<I", f.read(4))[0] == 1  # ELFCOMPRESS_ZLIB
        f.seek(offset)
        f.write(struct.pack("<I", 2))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([*GOBT_CMD, "--no-cache", "-lv", f"uprobe:{broken}:*"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("uprobe:")]
    assert len(rows) > 1000
    assert done.stdout.count("unreadable DWARF") >= len(rows) - 50

    # An int the ABI code cannot place (as a corrupt DW_AT_go_kind makes
    # it): a row per function that takes one, the rest listed as usual.
    from gobt.abi import assign as abi

    real = abi._flatten

    def refusing(t, base=0):
        if t.name == "int":
            return real(type("Odd", (), {"size": 8, "kind": "unknown", "name": "int"})(), base)
        return real(t, base)

    monkeypatch.setattr(abi, "_flatten", refusing)
    lines = _listing(f"uprobe:{gofmt}:*", bpftrace_facts, bulk=True)
    refused = [line for line in lines if "does not know how Go passes a value of type int" in line]
    assert refused and len([line for line in lines if line.startswith("uprobe:")]) > 1000
    assert any(" RAX" in line or ",RBX" in line for line in lines)  # the others still placed


def test_a_refuted_declaration_still_shows_its_function(toolchains):
    """-lv with a declared signature the binary refutes: the function's
    row first, then the error (exit 1), as before the rows were batched."""
    need("newest" in toolchains, "the newest Go toolchain is missing (run scripts/setup)")
    gofmt = build_package(toolchains["newest"], "cmd/gofmt", BUILD_DIR)
    done = subprocess.run([*GOBT_CMD, "-lv", f"goret:{gofmt}:main.main(x int)"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert f"goret:{gofmt}:main.main  " in done.stdout
    assert "the signature declares 1 param for main.main, its DWARF has 0" in done.stderr


def test_progress_only_goes_forward(toolchains, tmp_path):
    """A forked child lists the second half (split.py) and its rows come
    last, all at once: the count shown must not go back to the child's."""
    import re

    need("newest" in toolchains, "the newest Go toolchain is missing (run scripts/setup)")
    go = build_package(toolchains["newest"], "cmd/go", BUILD_DIR)
    env = {**os.environ, "GOBT_PROGRESS_AFTER": "0", "XDG_CACHE_HOME": str(tmp_path)}
    out, terminal, rc = _run_with_stderr_on_a_tty(["--no-cache", "-lv", f"uprobe:{go}:*"], env)
    assert rc == 0, terminal
    counts = [int(n) for n in re.findall(r"gobt: (\d+)/\d+ functions", terminal)]
    assert len(counts) > 5 and counts == sorted(counts), counts
    assert out.count("\n") > 40000
