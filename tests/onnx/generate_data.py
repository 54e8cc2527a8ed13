#!/usr/bin/python3
"""Generates the ONNX backend node tests' data (model.onnx + test_data_set_*/*.pb) into OUTDIR.

Debian's python3-onnx 1.12 ships the test generators but not their output. The generators use
NumPy aliases (np.float, np.int, np.bool, np.object, np.complex, np.str) that NumPy 1.24 removed;
they are restored as the builtins they aliased before onnx is imported.

Usage: generate_data.py OUTDIR   (exit 1, loudly, when onnx cannot be imported: dev.sh installs
python3-onnx, so a missing module is a broken set-up, not a reason to skip)
"""
import os
import shutil
import sys
import warnings


def main():
    if len(sys.argv) != 2:
        print("usage: generate_data.py OUTDIR", file=sys.stderr)
        return 2
    out = sys.argv[1]
    warnings.simplefilter("ignore")
    try:
        import numpy as np
    except ImportError as e:
        print(f"generate_data.py: error: numpy is missing ({e}); run ./dev.sh setup", file=sys.stderr)
        return 1
    for name, alias in (("float", float), ("int", int), ("bool", bool), ("object", object),
                        ("complex", complex), ("str", str)):
        if name not in np.__dict__:
            setattr(np, name, alias)
    try:
        from onnx.backend.test import cmd_tools
    except ImportError as e:
        print(f"generate_data.py: error: the onnx Python package is missing ({e}); "
              "install python3-onnx (./dev.sh setup)", file=sys.stderr)
        return 1
    if os.path.isdir(out):
        shutil.rmtree(out)
    sys.argv = ["cmd_tools", "generate-data", "-o", out]
    cmd_tools.main()
    n = len(os.listdir(os.path.join(out, "node")))
    print(f"generate_data.py: {n} node test cases in {out}/node")
    return 0 if n > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
