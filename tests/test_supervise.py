"""bpftrace under gobt's supervisor (a rewritten program): messages in the
user's terms, and otherwise exactly bpftrace: exit status, signals, stdin,
-c, -p, the order and timing of output. Real bpftrace, real Go binaries."""

import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time

import pytest

from conftest import asleep_in_epoll, gobt, no_traceback

GOBT = [sys.executable, "-m", "gobt"]


@pytest.fixture(scope="module")
def ticker(go_build):
    return go_build("newest", "tests/programs/ticker")


def script(tmp_path, text, name="t.gbt"):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return str(path)


def located(stderr, name):
    """bpftrace's three-line message about `name`, as (header, line, caret)."""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(name + ":") and re.match(r".*?:\d+:\d+-\d+: ERROR: ", line):
            return line, lines[i + 1], lines[i + 2]
    raise AssertionError(f"no located error about {name} in:\n{stderr}")


def caret_under(line, caret):
    """The text the caret marks (bpftrace shows tabs as 4 spaces)."""
    start = len(caret) - len(caret.lstrip(" "))
    return line[start:len(caret)]


# -- messages --------------------------------------------------------------

@pytest.mark.parametrize("body, marked", [
    ('printf("%d %d\\n" retval, goid);', "retval"),  # a missing comma
    ('printf("%d\\n", retval); goelapsed = 1;', "="),  # bpftrace stops at the =
    ('printf("%d\\n", goid());', "goid("),
])
def test_errors_point_at_the_users_line(body, marked, ticker, bpf, tmp_path):
    column = 3 + body.index(marked)  # after "{\t"
    path = script(tmp_path, f"// first line\ngoret:{ticker}:main.tick\n{{\t{body} }}\n")
    proc = gobt(path, "-c", f"{ticker} 3")
    no_traceback(proc)
    assert proc.returncode == 1
    head, line, caret = located(proc.stderr, path)
    assert head.startswith(f"{path}:3:{column}-"), head
    assert line == f"{{    {body} }}"  # the user's line, bpftrace's tab
    assert caret_under(line, caret) == marked
    assert "reg(" not in proc.stderr and "/proc/self/fd" not in proc.stderr


def test_error_in_a_predicate_gobt_moved_into_the_block(ticker, bpf, tmp_path):
    # With goelapsed the predicate moves into the block, on another line;
    # the message still shows the user's predicate line.
    path = script(tmp_path, f'goret:{ticker}:main.tick\n/goarg(i) > 1 && goelapsed > "a"/\n{{ @x = 1; }}\n')
    proc = gobt(path, "-c", f"{ticker} 3")
    head, line, caret = located(proc.stderr, path)
    assert head.startswith(f"{path}:2:18-33: ERROR: Type mismatch"), head
    assert caret_under(line, caret) == 'goelapsed > "a"'


def test_error_in_a_one_liner_is_about_stdin_as_in_bpftrace(ticker, bpf):
    proc = gobt("-e", f'goret:{ticker}:main.tick {{ printf("%d\\n" retval); }}', "-c", f"{ticker} 3")
    head, line, caret = located(proc.stderr, "stdin")
    assert caret_under(line, caret) == "retval" and line.startswith("goret:")


def test_error_in_a_crlf_script(ticker, bpf, tmp_path):
    path = tmp_path / "crlf.gbt"
    path.write_bytes(f'goret:{ticker}:main.tick\r\n{{ printf("%d\\n" retval); }}\r\n'.encode())
    proc = gobt(str(path), "-c", f"{ticker} 3")
    head, line, caret = located(proc.stderr, str(path))
    assert head.startswith(f"{path}:2:")
    assert caret_under(line, caret) == "retval"


def test_other_messages_pass_through(ticker, bpf, tmp_path):
    # A semantic error bpftrace reports on a whole span over lines: only the
    # name changes.
    path = script(tmp_path, f'goret:{ticker}:main.tick {{ @x = retval +\n "a"; }}\n')
    proc = gobt(path, "-c", f"{ticker} 3")
    assert re.search(rf"^{re.escape(path)}:1-2: ERROR: Type mismatch", proc.stderr, re.M), proc.stderr


@pytest.mark.host_bpftrace  # 0.23 has bfd and checks boundaries itself
def test_boundary_warnings_become_one_gobt_line(ticker, bpf, tmp_path):
    path = script(tmp_path, f'goret:{ticker}:main.tick {{ @n = count(); }}\n')
    # GOBT_NOTES=all: the note is said once per binary, and ticker is shared.
    proc = gobt(path, "-c", f"{ticker} 3", env={"GOBT_NOTES": "all"})
    assert proc.returncode == 0, proc.stderr
    assert "instruction boundary for" not in proc.stderr
    gobt_lines = [line for line in proc.stderr.splitlines() if line.startswith("gobt:")]
    assert len(gobt_lines) == 1 and "instruction boundary" in gobt_lines[0], proc.stderr


@pytest.mark.host_bpftrace  # 0.23 has bfd and checks boundaries itself
def test_boundary_warning_for_the_users_own_offset_stays(ticker, bpf, tmp_path):
    # The user's own uprobe at a file offset is not gobt's to vouch for:
    # here main.tick's first instruction, by its file offset.
    from elftools.elf.elffile import ELFFile

    with open(ticker, "rb") as f:
        elf = ELFFile(f)
        addr = elf.get_section_by_name(".symtab").get_symbol_by_name("main.tick")[0]["st_value"]
        seg = next(s for s in elf.iter_segments()
                   if s["p_type"] == "PT_LOAD" and s["p_vaddr"] <= addr < s["p_vaddr"] + s["p_filesz"])
        own = f"uprobe:{ticker}:0x{addr - seg['p_vaddr'] + seg['p_offset']:x}"
    proc = gobt("--unsafe", "-e", f"{own} {{ }} goret:{ticker}:main.tick {{ }}", "-c", f"{ticker} 3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("Could not determine instruction boundary") == 1, proc.stderr


# -- bpftrace's behaviour, kept ------------------------------------------------

@pytest.mark.parametrize("program, code", [
    ("goret:{t}:main.tick {{ @x = ; }}", 1),  # syntax
    ("goret:{t}:main.tick {{ @x = 1 + \"a\"; }}", 1),  # semantics
    ("goret:{t}:main.tick {{ exit(); }}", 0),
    ("goret:{t}:main.tick {{ }} kprobe:no_such_function_here {{ }}", None),  # attach
])
def test_exit_status_is_bpftraces(program, code, ticker, bpf):
    program = program.format(t=ticker)
    # GOBT_NOTES=all: gobt's note that it adds --unsafe is said once per binary.
    ours = gobt("-e", program, "-c", f"{ticker} 3", env={"GOBT_NOTES": "all"})
    emitted = gobt("--emit", "-e", program).stdout
    unsafe = ["--unsafe"] if "--unsafe" in ours.stderr else []
    theirs = subprocess.run([bpf, *unsafe, "-e", emitted, "-c", f"{ticker} 3"],
                            capture_output=True, text=True, timeout=60)
    assert ours.returncode == theirs.returncode, (ours.stderr, theirs.stderr)
    if code is not None:
        assert ours.returncode == code


def start(args, **kwargs):
    return subprocess.Popen([*GOBT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def finish(proc, timeout=60):
    """proc's (stdout, stderr); a test that fails leaves no bpftrace behind."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split():
            os.kill(int(pid), signal.SIGKILL)
        proc.kill()
        proc.communicate()
        raise


def settle(proc):
    """Wait until bpftrace, supervised or exec'd, sleeps in its poll loop (conftest.asleep_in_epoll)."""
    kids = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
    asleep_in_epoll(int(kids[0]) if kids else proc.pid)


def interrupt(proc):
    settle(proc)
    proc.send_signal(signal.SIGINT)
    return finish(proc)


def wait_for(proc, text, timeout=60):
    """Read proc's stdout until `text` shows up; what was read."""
    seen = b""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while text not in seen:
        ready, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            raise AssertionError(f"no {text!r} in {seen!r}")
        seen += chunk
    return seen


def bpftrace_child(proc):
    kids = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
    assert len(kids) == 1, kids
    return int(kids[0])


def test_death_by_signal_is_mirrored(ticker, bpf):
    proc = start(["-e", f"goret:{ticker}:main.tick {{ @n = count(); }} BEGIN {{ printf(\"up\\n\"); }}",
                  "-c", f"{ticker}"])
    wait_for(proc, b"up")
    os.kill(bpftrace_child(proc), signal.SIGKILL)
    finish(proc)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_gobt_reaches_bpftrace_once(sig, ticker, bpf):
    proc = start(["-e", f'goret:{ticker}:main.tick {{ @n = count(); }} BEGIN {{ printf("up\\n"); }}'
                        f' END {{ printf("end\\n"); }}', "-c", f"{ticker}"])
    wait_for(proc, b"up")
    settle(proc)
    proc.send_signal(sig)
    out, err = finish(proc)
    assert proc.returncode == 0, err  # bpftrace exits 0 on both, printing its maps
    assert out.count(b"end\n") == 1 and b"@n: " in out, out


def test_ctrl_c_at_a_terminal_is_delivered_once(ticker, bpf):
    # The terminal sends SIGINT to the whole foreground group, bpftrace
    # included; gobt must not send it a second one (0.17 then dies before
    # printing its maps).
    master, slave = os.openpty()

    def own_terminal():
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [*GOBT, "-e", f'goret:{ticker}:main.tick {{ @n = count(); }} BEGIN {{ printf("up\\n"); }}'
                      f' END {{ printf("end\\n"); }}', "-c", f"{ticker}"],
        stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, preexec_fn=own_terminal, pass_fds=(slave,))
    os.close(slave)
    try:
        wait_for(proc, b"up")
        settle(proc)
        os.write(master, b"\x03")
        out, err = finish(proc)
    finally:
        os.close(master)
    assert proc.returncode == 0, err
    assert out.count(b"end\n") == 1 and b"@n: " in out, out


def test_sighup_kills_as_it_kills_bpftrace(ticker, bpf):
    proc = start(["-e", f'goret:{ticker}:main.tick {{ }} BEGIN {{ printf("up\\n"); }}', "-c", f"{ticker}"])
    wait_for(proc, b"up")
    proc.send_signal(signal.SIGHUP)
    finish(proc)
    assert proc.returncode == -signal.SIGHUP


def test_stdin_and_c_are_bpftraces(ticker, bpf, tmp_path):
    # -c's command reads gobt's stdin, as it would read bpftrace's (which
    # splits -c at spaces, without a shell: the command is a script).
    sh = tmp_path / "reads.sh"
    sh.write_text(f"read line; echo got:$line; exec {ticker} 3\n")
    cmd = f"/bin/sh {sh}"
    proc = subprocess.run([*GOBT, "-e", f'goret:{ticker}:main.tick {{ printf("r=%d\\n", retval); }}', "-c", cmd],
                          input=b"hello\n", capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "got:hello" in out and "r=0\nr=3\nr=6\n" in out, out


def test_p_attaches_to_a_running_process(ticker, bpf):
    app = subprocess.Popen([ticker], stdout=subprocess.PIPE)
    try:
        app.stdout.readline()
        proc = gobt("-p", str(app.pid), "-e",
                    f'goret:{ticker}:main.tick {{ printf("r=%d\\n", retval); exit(); }}')
    finally:
        app.kill()
        app.wait()
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^r=\d+$", proc.stdout, re.M), proc.stdout


def test_output_comes_as_it_is_printed(ticker, bpf):
    # A line a second must arrive a second apart, not at exit.
    proc = start(["-e", f"goret:{ticker}:main.tick {{ @n = count(); }}"
                        ' interval:s:1 { printf("beat\\n"); }', "-c", f"{ticker}"])
    times = []
    try:
        for _ in range(3):
            # ("beat": the ticker's own first line says "ticking")
            wait_for(proc, b"beat\n")
            times.append(time.monotonic())
    finally:
        interrupt(proc)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.7 < g < 1.3 for g in gaps), gaps


def signal_state(pid):
    status = open(f"/proc/{pid}/status").read()
    return {k: int(re.search(rf"^{k}:\s*([0-9a-f]+)", status, re.M).group(1), 16) for k in ("SigBlk", "SigIgn")}


@pytest.mark.parametrize("rewritten", [True, False])
def test_bpftrace_starts_with_a_shells_signal_state(rewritten, ticker, bpf):
    # Nothing blocked or ignored that a shell would not (Python ignores
    # SIGPIPE: `gobt ... | head` must still end bpftrace).
    probe = f"goret:{ticker}:main.tick {{ }} " if rewritten else ""
    proc = start(["-e", probe + 'BEGIN { printf("up\\n"); }'])
    try:
        wait_for(proc, b"up")
        pid = bpftrace_child(proc) if rewritten else proc.pid
        # bpftrace blocks and ignores nothing itself (0.17 and 0.23)
        assert signal_state(pid) == {"SigBlk": 0, "SigIgn": 0}
    finally:
        interrupt(proc)
