"""xiref/allocator.py: with keep_freed_memory() a loop of large temporaries stops faulting pages in; without
it (glibc's defaults) every temporary is faulted in again. Run in fresh processes: the setting is global."""
import platform
import subprocess
import sys

import pytest

LOOP = """
import resource, sys
import numpy as np
from xiref.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
x = np.ones((256, 512))                          # 1 MiB blocks: above glibc's default mmap threshold


def update():                                     # like one update: many temporaries alive, then all freed
    ys = [x * 2.0 for _ in range(16)]
    return sum(float(y[0, 0]) for y in ys)


for _ in range(3):
    update()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    update()
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / (20 * 16))
"""


def faults_per_temporary(mode):
    out = subprocess.run([sys.executable, "-c", LOOP, mode], capture_output=True, text=True, check=True).stdout
    applied, faults = out.split()
    return applied, float(faults)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keep_freed_memory_stops_page_faults_of_temporaries():
    applied, kept = faults_per_temporary("keep")
    _, default = faults_per_temporary("default")
    assert applied == "True"
    # 1 MiB = 256 pages of 4 KiB: the default faults (nearly) every page in again, the setting none
    assert default > 100 and kept < 5, (default, kept)
