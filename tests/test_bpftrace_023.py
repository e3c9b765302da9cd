"""The other attach form: a bpftrace with bfd (Debian trixie's 0.23).

There gobt spells probes "sym"+offset, which bpftrace checks itself, and
needs no --unsafe; except for symbols holding '*' (main.(*T).M), which
bpftrace >= 0.20 treats as wildcards and then silently probes at the
function's entry: gobt gives their address, which bpftrace maps back.
"""

import re
import subprocess

from conftest import gobt, no_traceback
from test_goret import objdump_rets, probe_vaddr



def test_sym_offset_form_hits_every_ret(newer_bpftrace, go_build):
    binary = go_build("go1.19", "tests/programs/multiret")
    program = 'goret:%s:main.classify { @[probe, reg("ax")] = count(); }' % binary
    emitted = gobt("--bpftrace", newer_bpftrace, "--emit", "-e", program)
    assert emitted.returncode == 0, emitted.stderr
    # The attach points, up to the predicate (the END gate, gate.py) or the block.
    attach = [a.strip() for a in re.split(r" /| \{", emitted.stdout, maxsplit=1)[0].split(",")]
    assert all(re.fullmatch(r'uprobe:.*:"main\.classify"\+\d+', a) for a in attach), attach
    assert sorted(probe_vaddr(binary, a) for a in attach) == sorted(objdump_rets(binary, "main.classify"))

    # GOBT_NOTES=all: an --unsafe note would be said once per binary only.
    proc = gobt("--bpftrace", newer_bpftrace, "-e", program, "-c", f"{binary} 1000", env={"GOBT_NOTES": "all"})
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "--unsafe" not in proc.stderr
    truth = {int(v): int(c) for v, c in re.findall(r"^path (\d+) (\d+)$", proc.stdout, re.M)}
    seen = {}
    for probe, value, count in re.findall(r"^@\[(.+), (\d+)\]: (\d+)$", proc.stdout, re.M):
        seen[int(value)] = seen.get(int(value), 0) + int(count)
    assert seen == truth and sum(truth.values()) == 1000


def test_symbol_with_star_still_fires_at_the_ret(newer_bpftrace, go_build, matrix_src):
    binary = go_build("go1.19", matrix_src)
    program = f'goret:{binary}:main.(*T).PtrMethod {{ printf("B R (*T).PtrMethod ~r0=%ld\\n", retval); }}'
    proc = gobt("--bpftrace", newer_bpftrace, "-e", program, "-c", binary, env={"GOBT_NOTES": "all"})
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "--unsafe" not in proc.stderr  # an address bpftrace maps and checks itself
    emitted = gobt("--bpftrace", newer_bpftrace, "--emit", "-e", program)
    assert re.match(r"uprobe:[^ ]+:0x[0-9a-f]+ (/@zz_gobt_t\[-1, -1, \(uint64\)0, \(uint64\)0\]/ )?\{", emitted.stdout), emitted.stdout
    truth = re.findall(r"^P (R \(\*T\)\.PtrMethod .*)$", proc.stdout, re.M)
    assert truth and re.findall(r"^B (R \(\*T\)\.PtrMethod .*)$", proc.stdout, re.M) == truth

    # The pitfall is real: the same offset spelled "sym"+off fires at entry,
    # where RAX holds the receiver, not the result.
    (ret,) = objdump_rets(binary, "main.(*T).PtrMethod")
    from gobt.binary.gobinary import GoBinary

    start = GoBinary(binary).symbols.lookup("main.(*T).PtrMethod").start
    raw = subprocess.run(
        [newer_bpftrace, "-e", f'uprobe:{binary}:"main.(*T).PtrMethod"+{ret - start} '
         '{ printf("B R (*T).PtrMethod ~r0=%ld\\n", reg("ax")); }', "-c", binary],
        capture_output=True, text=True, timeout=60,
    )
    assert re.findall(r"^B (R .*)$", raw.stdout, re.M) != truth, raw.stdout


def test_goelapsed_and_params_under_newer_bpftrace(newer_bpftrace, go_build):
    binary = go_build("newest", "tests/programs/goroutines")
    program = (f"goret:{binary}:main.recurse {{ @calls[goarg(id), goarg(level)] = count(); "
               "@slow[goarg(id), goarg(level)] = min(goelapsed); }")
    proc = gobt("--bpftrace", newer_bpftrace, "-e", program, "-c", f"{binary} 60",
                env={"BPFTRACE_MAP_KEYS_MAX": "65536"})
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    calls = {tuple(map(int, k.split(", "))): int(v)
             for k, v in re.findall(r"^@calls\[(.+)\]: (\d+)$", proc.stdout, re.M)}
    assert calls == {(i, lv): 1 for i in range(60) for lv in range(1 + i % 24 + 1)}
    slow = {tuple(map(int, k.split(", "))): int(v)
            for k, v in re.findall(r"^@slow\[(.+)\]: (\d+)$", proc.stdout, re.M)}
    assert all(v >= (1 + k[0] % 5) * 1_000_000 for k, v in slow.items())
