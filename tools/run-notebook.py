#!/usr/bin/python3
"""Runs a notebook end to end on the moongrad kernel with nbclient, as
`jupyter nbconvert --execute` would, and writes it with its outputs.

    tools/run-notebook.py MOONGRAD IN.ipynb OUT.ipynb

MOONGRAD is the executable: its kernelspec is written to a temporary
prefix (moongrad --install-kernel --prefix), so nothing outside it changes.
A cell tagged raises-exception may fail; any other failing cell fails the
run. The specs (spec/notebook_spec.lua) run the example notebook so, and
so does `make notebook`, which refreshes the outputs committed with it.
"""
import os
import subprocess
import sys
import tempfile

import nbformat
from nbclient import NotebookClient


def main():
    exe, src, dst = sys.argv[1:4]
    with tempfile.TemporaryDirectory(prefix="moongrad_nb_") as prefix:
        subprocess.run([exe, "--install-kernel", "--prefix", prefix], check=True,
                       stdout=subprocess.DEVNULL)
        os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
        nb = nbformat.read(src, as_version=4)
        client = NotebookClient(nb, kernel_name="moongrad", timeout=300,
                                resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}})
        client.execute()
    nbformat.write(nb, dst)


main()
