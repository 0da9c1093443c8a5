#!/usr/bin/env python3
"""translate.py IN.cu OUT.cpp — a .cu file as C++ for the emulator: every kernel launch
`k<<<grid, block[, shmem[, stream]]>>>(args)` becomes `SGN_EMU_LAUNCH(k, grid, block, ...)(args)`
(cuda_runtime.h of tests/cuda_emu/include), and `extern __shared__ T name[];` a pointer to the
launch's dynamic shared memory. Line breaks are kept and a #line directive names the
original file, so compiler messages and __FILE__/__LINE__ point into the .cu."""
import re
import sys

LAUNCH = re.compile(r"([A-Za-z_]\w*(?:\s*<[^<>;()]*>)?)\s*<<<(.*?)>>>", re.S)
DYN_SHARED = re.compile(r"extern\s+__shared__\s+([A-Za-z_][\w:]*)\s+([A-Za-z_]\w*)\s*\[\s*\]\s*;")


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    out, count = LAUNCH.subn(lambda m: "SGN_EMU_LAUNCH(%s, %s)" % (m.group(1), m.group(2)), text)
    out = DYN_SHARED.sub(r"\1 *const \2 = (\1 *)::sgn_emu::dynamic_shared();", out)
    if "<<<" in out or ">>>" in out or "extern __shared__" in out:
        sys.exit("translate.py: %s: a launch or dynamic shared array the rewrite does not understand" % src)
    with open(dst, "w", encoding="utf-8") as f:
        f.write('#line 1 "%s"\n' % src)
        f.write(out)


if __name__ == "__main__":
    main()
