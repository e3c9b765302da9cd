"""decode.py on whichever capstone is installed: 5, or 6, whose cs_insn
layout and architecture numbers differ (3 is X86 in 5 and MIPS in 6).
scripts/test-capstone-next runs this file again in a throwaway venv with
the newest capstone pre-release.
"""

import ctypes
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD_DIR, GOBT_CMD, need
from toolchains import ROOT, build_package

pytestmark = pytest.mark.bpftrace_independent


def test_constants_are_the_installed_packages():
    """The numbers decode.py gives libcapstone are those the installed
    package's own Cs would take, for both architectures."""
    import capstone

    from gobt.binary import decode

    with open(os.path.join(os.path.dirname(capstone.__file__), "__init__.py"), encoding="utf-8") as f:
        from_text = decode.package_constants(f.read())
    arm64 = getattr(capstone, "CS_ARCH_AARCH64", None)
    if arm64 is None:
        arm64 = capstone.CS_ARCH_ARM64
    want = {"amd64": (capstone.CS_ARCH_X86, capstone.CS_MODE_64), "arm64": (arm64, capstone.CS_MODE_ARM)}
    assert from_text == want
    assert {arch: decode.binding_constants(arch) for arch in want} == want


def test_direct_layout_is_the_bindings():
    """The fast path is used on this capstone, and its cs_insn layout is
    the one the package's binding declares."""
    import capstone

    from gobt.binary import decode

    lib = decode._library()
    assert lib, f"libcapstone of capstone {capstone.__version__} should load directly"
    fields = {name: getattr(capstone._cs_insn, name).offset for name in ("id", "address", "size", "mnemonic",
                                                                          "op_str")}
    id_at, address_at, size_at, mnemonic_at, op_str_at, insn_size = lib.layout
    assert fields == {"id": id_at, "address": address_at, "size": size_at, "mnemonic": mnemonic_at,
                      "op_str": op_str_at}
    assert ctypes.sizeof(capstone._cs_insn) == insn_size
    for arch in ("amd64", "arm64"):
        assert decode._handle(arch) is not None, f"{arch} falls back to the binding on {capstone.__version__}"


def test_goret_lists_every_function_on_this_capstone(toolchains):
    """What capstone 6 broke: every amd64 function listed "not probed"."""
    need("newest" in toolchains, "the newest Go toolchain is missing (run scripts/setup)")
    for goarch in ("amd64", "arm64"):
        gofmt = build_package(toolchains["newest"], "cmd/gofmt", BUILD_DIR, goarch=goarch)
        out = subprocess.run([*GOBT_CMD, "-lv", f"goret:{gofmt}:main.*"], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        rows = [line for line in out.stdout.splitlines() if line.startswith("goret:")]
        assert len(rows) > 5, out.stdout
        assert not [r for r in rows if "not probed" in r], out.stdout
        assert sum(bool(re.search(r"  \d+ RETs?\b", r)) for r in rows) > 5, out.stdout


def test_a_capstone_that_cannot_decode_amd64_says_so(tmp_path, toolchains):
    """The installed capstone with its X86 number pointing at MIPS (what
    gobt did on capstone 6) is refused with an error naming the version,
    never a listing of functions that "cannot be disassembled"."""
    import capstone

    need("newest" in toolchains, "the newest Go toolchain is missing (run scripts/setup)")
    gofmt = build_package(toolchains["newest"], "cmd/gofmt", BUILD_DIR)
    copy = tmp_path / "capstone"
    shutil.copytree(os.path.dirname(capstone.__file__), copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.a", "include"))
    init = (copy / "__init__.py").read_text()
    init, n = re.subn(r"^CS_ARCH_X86 = \d+", f"CS_ARCH_X86 = {capstone.CS_ARCH_MIPS}", init, flags=re.M)
    assert n == 1
    (copy / "__init__.py").write_text(init)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), ROOT]), "XDG_CACHE_HOME": str(tmp_path)}
    cmd = GOBT_CMD if GOBT_CMD[0] == sys.executable else [sys.executable, "-m", "gobt"]
    for args in (["-lv", f"goret:{gofmt}:main.*"], ["--emit", "-e", f"goret:{gofmt}:main.main {{ exit(); }}"]):
        out = subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 1, (out.stdout, out.stderr)
        assert "not probed" not in out.stdout
        assert re.search(r"error: the installed capstone \S*\d\S* cannot decode amd64", out.stderr), out.stderr
        assert "internal error" not in out.stderr
