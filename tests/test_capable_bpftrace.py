"""Every function reachable on every bpftrace.

bpftrace < 0.22 without bfd (Debian 12's 0.17) attaches at an offset only as
a file offset no symbol covers, which rules out code ~4 MB into .text: on
cmd/go that includes main.main. gobt then runs the bpftrace 0.23 that
scripts/setup installs in a private prefix, by itself, with one note; a
bpftrace the user named is never swapped; with no capable bpftrace the
error says how to get one. Checked on cmd/go built by the newest toolchain.
"""

import os
import re

import pytest

from conftest import BUILD_DIR, ON_TRIXIE, gobt, need, no_traceback
from toolchains import TRIXIE_BPFTRACE, build_package

@pytest.fixture(scope="module")
def cmd_go(toolchains):
    chain = next((toolchains[n] for n in toolchains if n == "newest"), None)
    need(chain is not None, "the newest Go toolchain is missing (run scripts/setup)")
    return build_package(chain, "cmd/go", BUILD_DIR)


def _main_main_probe(go):
    # `go help` is the one way main.main returns (every other path ends in
    # os.Exit through base.Exit).
    return f'goret:{go}:main.main {{ printf("main.main returned in goroutine %d\\n", goid); }}'


def test_goret_on_main_main_of_cmd_go_fires(bpf, cmd_go):
    need(os.access(TRIXIE_BPFTRACE, os.X_OK), f"{TRIXIE_BPFTRACE} is missing (run scripts/setup)")
    proc = gobt("-e", _main_main_probe(cmd_go), "-c", f"{cmd_go} help")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("main.main returned in goroutine 1\n") == 1, proc.stdout
    switched = "using bpftrace 0.23" in proc.stderr
    # On 0.17 gobt picks 0.23 by itself; when the tests run 0.23 (named by
    # GOBT_BPFTRACE) there is nothing to pick.
    assert switched == (not ON_TRIXIE), proc.stderr
    if switched:
        assert proc.stderr.count("using bpftrace") == 1


@pytest.mark.host_bpftrace  # the switch is from the host's 0.17
def test_warm_run_execs_the_capable_bpftrace_again(bpf, cmd_go, tmp_path):
    need(os.access(TRIXIE_BPFTRACE, os.X_OK), f"{TRIXIE_BPFTRACE} is missing (run scripts/setup)")
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    for _ in range(2):  # cold, then from the program cache
        proc = gobt("-e", _main_main_probe(cmd_go), "-c", f"{cmd_go} help", env=env)
        assert proc.returncode == 0, proc.stderr
        assert "main.main returned in goroutine 1" in proc.stdout
        assert "using bpftrace 0.23" in proc.stderr
    assert os.listdir(tmp_path / "gobt" / "programs"), "the second run was not a warm one"


@pytest.mark.host_bpftrace  # the switch is from the host's 0.17
def test_no_capable_bpftrace_says_how_to_get_one(bpf, cmd_go):
    proc = gobt("--emit", "-e", _main_main_probe(cmd_go), env={"GOBT_CAPABLE_BPFTRACE": ""})
    no_traceback(proc)
    assert proc.returncode != 0
    assert "cannot attach inside main.main" in proc.stderr
    assert "sudo ./scripts/setup" in proc.stderr
    assert "uprobe:BIN:FUNC" in proc.stderr and "goarg works there" in proc.stderr


@pytest.mark.host_bpftrace  # the switch is from the host's 0.17
def test_a_bpftrace_the_user_named_is_kept(bpf, cmd_go):
    proc = gobt("--bpftrace", "/usr/bin/bpftrace", "--emit", "-e", _main_main_probe(cmd_go))
    assert proc.returncode != 0
    assert "gobt keeps the bpftrace you chose: /usr/bin/bpftrace" in proc.stderr
    assert "using bpftrace" not in proc.stderr


@pytest.mark.host_bpftrace  # the switch is from the host's 0.17
def test_listing_marks_what_the_bpftrace_cannot_reach(bpf, cmd_go):
    without = gobt("-l", f"goret:{cmd_go}:main.ma*", env={"GOBT_CAPABLE_BPFTRACE": ""})
    assert without.returncode == 0, without.stderr
    main_row = next(line for line in without.stdout.splitlines() if line.split()[0].endswith(":main.main"))
    assert "[unreachable: bpftrace 0.17.0 without bfd" in main_row
    # Only what lies past the reach is marked.
    assert any("[" not in line for line in without.stdout.splitlines()), without.stdout
    if os.access(TRIXIE_BPFTRACE, os.X_OK):
        with_it = gobt("-l", f"goret:{cmd_go}:main.ma*")
        main_row = next(line for line in with_it.stdout.splitlines() if line.split()[0].endswith(":main.main"))
        assert f"gobt runs {TRIXIE_BPFTRACE}" in main_row


@pytest.mark.host_bpftrace  # the switch is from the host's 0.17
def test_a_wildcard_switches_too_so_every_match_gets_its_probe(bpf, cmd_go):
    need(os.access(TRIXIE_BPFTRACE, os.X_OK), f"{TRIXIE_BPFTRACE} is missing (run scripts/setup)")
    script = f"goret:{cmd_go}:main.ma* {{ @[probe] = count(); }}"
    switched = gobt("--emit", "-e", script)
    assert switched.returncode == 0, switched.stderr
    assert "using bpftrace 0.23" in switched.stderr and "get no probe" not in switched.stderr
    assert '"main.main"+' in switched.stdout
    # Without a capable bpftrace the wildcard keeps what 0.17 can reach, and says what it left out.
    kept = gobt("--emit", "-e", script, env={"GOBT_CAPABLE_BPFTRACE": ""})
    assert kept.returncode == 0, kept.stderr
    assert "main.main gets no probe" in kept.stderr


def test_names_a_probe_cannot_spell_attach_by_address_on_a_capable_bpftrace(bpf, cmd_go):
    """Generic instantiations whose names hold a struct tag (a quote and a
    backslash, which no probe can spell) sit past 0.17's reach in cmd/go.
    A bpftrace with bfd takes them by address and checks them itself; no
    note calls a bpftrace "without bfd" when its --info says bfd: yes."""
    need(os.access(TRIXIE_BPFTRACE, os.X_OK), f"{TRIXIE_BPFTRACE} is missing (run scripts/setup)")
    script = f"goret:{cmd_go}:cmd/internal/par.*json* {{ @[probe] = count(); }}"
    emitted = gobt("--emit", "-e", script)
    no_traceback(emitted)
    assert emitted.returncode == 0, emitted.stderr
    assert "no probe" not in emitted.stderr, emitted.stderr
    assert not re.search(r"bpftrace 0\.2[2-9][\d.]* \(without bfd\)", emitted.stderr), emitted.stderr
    points = re.findall(rf"uprobe:{re.escape(cmd_go)}:(\S+?)[ ,\n]", emitted.stdout)
    assert len(points) >= 10 and all(re.fullmatch(r"0x[0-9a-f]+", p) for p in points), emitted.stdout
    # bpftrace 0.23 attaches every one of them (it maps each address back to
    # its function and checks the instruction boundary with bfd).
    ran = gobt("-e", script, "-c", f"{cmd_go} help")
    no_traceback(ran)
    assert ran.returncode == 0, ran.stderr
    # (and the BEGIN and END that open and close gobt's gate, gate.py)
    assert f"Attaching {len(points) + 2} probes" in ran.stdout + ran.stderr, (ran.stdout, ran.stderr)
