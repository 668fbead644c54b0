"""Make Debian's torch use OpenBLAS instead of the reference BLAS.

Debian's python3-torch links libblas.so.3, which on this machine resolves to
the netlib *reference* BLAS (update-alternatives). Every nn.Linear goes
through it, and training is ~12x slower than with OpenBLAS (2.3 s vs 0.19 s
per batch of 128 for the FMNIST model). If the libopenblas0-openmp package is
installed (`apt-get install libopenblas0-openmp`) we re-exec the script with
its directory first on LD_LIBRARY_PATH; that only affects this process, not
the machine-wide alternative. Import this module *before* torch.
"""
import os
import sys

OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"


def ensure_openblas():
    if os.environ.get("PQVC_NO_OPENBLAS"):
        return
    if not os.path.exists(os.path.join(OPENBLAS_DIR, "libblas.so.3")):
        return
    paths = os.environ.get("LD_LIBRARY_PATH", "").split(":")
    if OPENBLAS_DIR in paths:
        return
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join([OPENBLAS_DIR] + [p for p in paths if p])
    # The dynamic loader reads LD_LIBRARY_PATH only at process start: re-exec.
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def blas_in_use():
    """Which libblas this process actually mapped (for the JSON sidecars)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if "libblas.so" in line or "libopenblas" in line:
                    return line.split()[-1]
    except OSError:
        pass
    return "unknown"
