"""A script's bytes reach --emit and bpftrace as the user wrote them: CRLF
line ends, and bytes that are not UTF-8 in comments and strings."""

import subprocess
import sys

import pytest

from conftest import no_traceback

# A Latin-1 'é' (not UTF-8) in a comment and in a string, and CRLF line ends.
PLAIN = b'// caf\xe9\r\nBEGIN { printf("caf\xe9\\n"); exit(); }\r\n'


def goret_script(binary):
    return (b"// caf\xe9\r\ngoret:" + binary.encode() + b":main.tick\r\n"
            b'{ printf("r=%d \xe9\\n", retval); exit(); }\r\n')


def run(*args, input=None):
    return subprocess.run([sys.executable, "-m", "gobt", *args], capture_output=True, input=input, timeout=120)


@pytest.fixture(scope="module")
def ticker(go_build):
    return go_build("newest", "tests/programs/ticker")


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_plain_script_bytes_survive_emit(how, tmp_path):
    path = tmp_path / "plain.bt"
    path.write_bytes(PLAIN)
    proc = run("--emit", str(path)) if how == "file" else run("--emit", "-", input=PLAIN)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == PLAIN


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_rewritten_script_keeps_crlf_and_bytes(how, ticker, tmp_path):
    script = goret_script(ticker)
    path = tmp_path / "crlf.gbt"
    path.write_bytes(script)
    proc = run("--emit", str(path)) if how == "file" else run("--emit", "-", input=script)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count(b"\r\n") == script.count(b"\r\n")
    assert out.startswith(b"// caf\xe9\r\n")
    # The user's non-UTF-8 byte survives; %d becomes %ld for a Go int (printf.py).
    assert b'"r=%ld \xe9\\n"' in out


def test_non_utf8_script_runs(ticker, bpf, tmp_path):
    path = tmp_path / "latin1.gbt"
    path.write_bytes(goret_script(ticker))
    proc = run(str(path), "-c", f"{ticker} 50")
    no_traceback(subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
                                             proc.stderr.decode(errors="replace")))
    assert proc.returncode == 0, proc.stderr
    assert b"r=0 \xe9\n" in proc.stdout
