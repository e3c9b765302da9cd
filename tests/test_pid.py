"""-p PID: only that process, and its binary as that process sees it."""

import re
import subprocess


from conftest import gobt, no_traceback

SCRIPT = (
    "goret:{bin}:main.tick {{ @n = count(); printf(\"hit %d %d -> %d\\n\", pid, goarg(i), retval); }}\n"
    "interval:ms:400 {{ exit(); }}\n"
)


def start(cmd, **kw):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    line = proc.stdout.readline()
    assert line.startswith("ticking"), line + proc.stderr.read()
    return proc, int(line.split()[1])


def hits(stdout):
    return [tuple(map(int, h)) for h in re.findall(r"^hit (\d+) (\d+) -> (\d+)$", stdout, re.M)]


def test_generated_probes_fire_only_in_the_named_process(go_build, bpf, tmp_path):
    binary = go_build("go1.19", "tests/programs/ticker")
    a, pid_a = start([binary])
    b, pid_b = start([binary])
    try:
        script = tmp_path / "t.gbt"
        script.write_text(SCRIPT.format(bin=binary))
        proc = gobt(str(script), "-p", str(pid_a), timeout=60)
        no_traceback(proc)
        assert proc.returncode == 0, proc.stderr
        seen = hits(proc.stdout)
        assert len(seen) >= 10, proc.stdout
        assert {p for p, _, _ in seen} == {pid_a}
        assert all(r == 3 * i for _, i, r in seen)
    finally:
        for p in (a, b):
            p.kill()
            p.wait()


def test_binary_inside_another_mount_namespace(go_build, bpf, tmp_path):
    # The process runs a binary at a path that exists only in its own mount
    # namespace, as in a container; gobt must read it through /proc/PID/root.
    binary = go_build("go1.19", "tests/programs/ticker")
    mnt = tmp_path / "ctr"
    mnt.mkdir()
    inner = mnt / "inner-app"
    shell = f"mount -t tmpfs none {mnt} && cp {binary} {inner} && exec {inner}"
    proc_c, pid = start(["unshare", "-m", "--propagation", "private", "sh", "-c", shell])
    try:
        assert not inner.exists()  # not on the host
        script = tmp_path / "c.gbt"
        script.write_text(SCRIPT.format(bin=inner))
        emitted = gobt("--emit", str(script), "-p", str(pid))
        assert emitted.returncode == 0, emitted.stderr
        assert f"/proc/{pid}/root{inner}:" in emitted.stdout
        proc = gobt(str(script), "-p", str(pid), timeout=60)
        no_traceback(proc)
        assert proc.returncode == 0, proc.stderr
        seen = hits(proc.stdout)
        assert len(seen) >= 10 and {p for p, _, _ in seen} == {pid}, proc.stdout
        assert all(r == 3 * i for _, i, r in seen)
        # Without -p the host has no such binary: a clear error.
        proc = gobt(str(script))
        assert proc.returncode == 1 and "not found" in proc.stderr
    finally:
        proc_c.kill()
        proc_c.wait()


def test_no_such_process(go_build):
    binary = go_build("go1.19", "tests/programs/ticker")
    proc = gobt("-p", "999999999", "-e", f"goret:{binary}:main.tick {{ exit(); }}")
    no_traceback(proc)
    assert proc.returncode == 1 and "no such process" in proc.stderr
