"""How many bytes of a running program's code differ from its file: the
breakpoints (int3) of the uprobes still in it. A process that holds uprobes
but is dying shows no fds while the kernel still removes them; its code
tells. Shared by the exit tests and bench/ (which polls it every 20 ms), and
apart from gobt/run/breakpoints.py, so that the two do not share a mistake."""

import os

PAGE = 4096


def breakpoints(pid, binary):
    binary = os.path.realpath(binary)
    count = 0
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem, \
            open(binary, "rb") as f:
        for line in maps:
            fields = line.split()
            if len(fields) < 6 or fields[5] != binary or "x" not in fields[1]:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            mem.seek(start)
            f.seek(int(fields[2], 16))
            live, disk = mem.read(end - start), f.read(end - start)
            for at in range(0, len(disk), PAGE):  # equal pages compare at memcmp's speed
                a, b = live[at:at + PAGE], disk[at:at + PAGE]
                if a != b:
                    count += sum(1 for x, y in zip(a, b) if x != y)
    return count
