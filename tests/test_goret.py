"""goret end to end: real Go binaries, real bpftrace, real probe hits."""

import re
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from conftest import STR_LEN_EXTRA, gobt, no_traceback

REGISTER_ABI_GOS = ["go1.19", "newest"]


def objdump_rets(binary, func):
    """RET addresses of `func`, from binutils: an oracle independent of capstone."""
    out = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", binary], capture_output=True, text=True, check=True
    ).stdout
    body = out.split(f"<{func}>:\n", 1)[1].split("\n\n", 1)[0]
    return [int(line.split(":")[0], 16) for line in body.splitlines() if re.search(r"\tret", line)]


def probe_vaddr(binary, probe_name):
    """The virtual address a bpftrace probe name points at, whatever its form."""
    last = probe_name.rsplit(":", 1)[1]
    with open(binary, "rb") as f:
        elf = ELFFile(f)
        # "sym"+off as gobt writes it, or sym+off as bpftrace 0.23 names it
        m = re.fullmatch(r'"?([^"]+?)"?\+(\d+)', last)
        if m:
            sym = elf.get_section_by_name(".symtab").get_symbol_by_name(m.group(1))[0]
            return sym["st_value"] + int(m.group(2))
        offset = int(last, 0)
        loads = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
        if offset >= min(seg["p_vaddr"] for seg in loads):
            return offset  # an address (a bpftrace with bfd maps it back to a symbol)
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_offset"] <= offset < seg["p_offset"] + seg["p_filesz"]:
                return offset - seg["p_offset"] + seg["p_vaddr"]
    raise AssertionError(f"cannot place {probe_name}")


@pytest.mark.parametrize("go", REGISTER_ABI_GOS)
def test_uretprobe_crashes_stacker_but_goret_does_not(go, go_build, bpf, tmp_path):
    stacker = go_build(go, "examples/stacker", gcflags="-l")
    cmd = f"{stacker} 1000000"

    # The problem gobt exists for: a uretprobe while the stack is copied.
    crash = subprocess.run(
        [bpf, "-e", f'uretprobe:{stacker}:"main.stacker" {{ printf("r\\n"); }}', "-c", cmd],
        capture_output=True, text=True, timeout=120,
    )
    crashed = crash.stdout + crash.stderr
    assert "unexpected return pc" in crashed or "fatal error" in crashed, crashed[-2000:]

    script = tmp_path / "stacker.gbt"
    script.write_text(
        f'goret:{stacker}:main.stacker\n{{\n  printf("result: \\"%s\\"\\n", str(reg("ax"), reg("bx"){STR_LEN_EXTRA}));\n}}\n'
    )
    proc = gobt(str(script), "-c", cmd)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "fatal error" not in proc.stdout + proc.stderr
    printed = re.findall(r"^hello: \d+$", proc.stdout, re.M)
    assert printed == ["hello: 999999000000"], proc.stdout
    assert re.findall(r'^result: "(.*)"$', proc.stdout, re.M) == [printed[0]], proc.stdout


@pytest.mark.parametrize("flags", ["", "all=-N -l"], ids=["optimized", "noopt"])
@pytest.mark.parametrize("go", REGISTER_ABI_GOS)
def test_goret_fires_once_per_return_on_the_right_ret(go, flags, go_build, bpf):
    binary = go_build(go, "tests/programs/multiret", gcflags=flags)
    calls = 2000
    expected_rets = objdump_rets(binary, "main.classify")
    assert len(expected_rets) >= 5, expected_rets

    program = 'goret:%s:main.classify { @[probe, reg("ax")] = count(); }' % binary
    emitted = gobt("--emit", "-e", program)
    assert emitted.returncode == 0, emitted.stderr
    attach = re.split(r" /|\{", emitted.stdout)[0].split(",")  # up to the predicate (the gate) or block
    assert sorted(probe_vaddr(binary, a.strip()) for a in attach) == sorted(expected_rets)

    proc = gobt("-e", program, "-c", f"{binary} {calls}")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    truth = {int(v): int(c) for v, c in re.findall(r"^path (\d+) (\d+)$", proc.stdout, re.M)}
    assert sum(truth.values()) == calls and len(truth) == 6

    hits = re.findall(r"^@\[(.+), (\d+)\]: (\d+)$", proc.stdout, re.M)
    by_ret = {}
    for probe, value, count in hits:
        by_ret.setdefault(probe_vaddr(binary, probe), []).append((int(value), int(count)))
    # Every RET sees a single return path, every path is seen on one RET,
    # and the counts are exactly the program's own.
    assert all(len(v) == 1 for v in by_ret.values()), by_ret
    seen = {v[0][0]: v[0][1] for v in by_ret.values()}
    assert seen == truth
    assert set(by_ret) <= set(expected_rets)


def test_goret_on_stack_abi_go115_reads_results_from_sp(go_build, bpf, tmp_path):
    swapper = go_build("go1.15", "examples/swapper", gcflags="-l")
    # Go 1.15 passes everything on the stack: x at SP+8, y at SP+24, and the
    # two string results at SP+40 and SP+56 (ptr, len each), at the RET too.
    script = tmp_path / "swap.gbt"
    script.write_text(
        f"goret:{swapper}:main.swap\n"
        "{\n"
        '  printf("results: \\"%s\\" and \\"%s\\"\\n",\n'
        f'    str(*(uint64 *)(reg("sp") + 40), *(uint64 *)(reg("sp") + 48){STR_LEN_EXTRA}),\n'
        f'    str(*(uint64 *)(reg("sp") + 56), *(uint64 *)(reg("sp") + 64){STR_LEN_EXTRA}));\n'
        "}\n"
    )
    proc = gobt(str(script), "-c", f"{swapper} hello go")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.findall(r"^go hello$", proc.stdout, re.M) == ["go hello"], proc.stdout
    assert re.findall(r"^results: .*$", proc.stdout, re.M) == ['results: "go" and "hello"'], proc.stdout
