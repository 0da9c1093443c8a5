"""Builds libsketchgn (and the CUDA plugin when nvcc is found) with the repository's Makefile
and copies them into the package, beside the modules: the binding loads the library from there,
and the library finds its plugin beside itself. The repository is this file's parent folder, or
$SKETCHGN_SOURCE; MAKEFLAGS (e.g. USE_CUDA=0, CUDA_ARCH=90) reach make as usual."""

import os
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
LIBS = ("libsketchgn.so", "libsketchgn-cuda.so")


def repository():
    root = os.environ.get("SKETCHGN_SOURCE") or os.path.dirname(HERE)
    if not os.path.exists(os.path.join(root, "Makefile")) or \
            not os.path.exists(os.path.join(root, "include", "sketchgn.h")):
        raise SystemExit(f"sketchgn: no source tree at {root} (a Makefile and include/sketchgn.h);"
                         f" install from a checkout with 'pip install ./python', or set "
                         f"SKETCHGN_SOURCE to the repository")
    return root


class BuildWithLibrary(build_py):
    """build_py, plus the library built by make and copied into the built package."""

    def run(self):
        super().run()
        root = repository()
        jobs = str(os.cpu_count() or 1)
        subprocess.run(["make", "-C", root, "-j", jobs, "BUILD=build", "python-libs"], check=True)
        dest = os.path.join(self.build_lib, "sketchgn")
        for name in LIBS:
            path = os.path.join(root, "build", name)
            target = os.path.join(dest, name)
            if os.path.exists(target):
                os.remove(target)
            if os.path.exists(path):  # the plugin only when nvcc was found
                shutil.copyfile(os.path.realpath(path), target)  # a file, not the symlink
                os.chmod(target, 0o755)


class BinaryDistribution(Distribution):
    """The wheel carries a compiled library: tag it for this platform, not py3-none-any."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
