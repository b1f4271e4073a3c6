"""``python -m evoart``: the ``evoart`` command, for an interpreter that has evoart on its
path but not the console script (a source checkout on ``PYTHONPATH``, as on a lent GPU
machine)."""

from evoart.cli import main

if __name__ == "__main__":
    main(prog_name="evoart")
