"""goret:/goentry: on a binary that is not Go: one clear error, for -l and
for a script, never a listing of C functions with Go's layout, never an
abort."""

import shutil
import subprocess

import pytest

from conftest import gobt, need, no_traceback


@pytest.fixture(scope="module")
def c_program(tmp_path_factory):
    need(shutil.which("gcc") is not None, "gcc is missing")
    folder = tmp_path_factory.mktemp("c")
    (folder / "p.c").write_text("int add(int a, int b) { return a + b; }\nint main(void) { return add(1, 2) - 3; }\n")
    subprocess.run(["gcc", "-O1", "-g", "-o", str(folder / "p"), str(folder / "p.c")], check=True)
    return str(folder / "p")


@pytest.mark.parametrize("args", [["-l", "goret:{b}:*"], ["-lv", "goentry:{b}:add"], ["-l", "goret:/bin/true:*"],
                                  ["--emit", "-e", "goret:{b}:add {{ @ = count(); }}"]],
                         ids=["l", "lv", "stripped", "script"])
def test_goret_on_a_c_binary_is_a_clear_error(args, c_program):
    proc = gobt(*[a.format(b=c_program) for a in args])
    no_traceback(proc)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert proc.stdout == ""
    assert "is not a Go binary" in proc.stderr and "bpftrace -l 'uprobe:" in proc.stderr, proc.stderr
