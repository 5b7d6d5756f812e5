"""``python -m dockyard``: the ``dockyard`` command."""

from dockyard.cli import main

main(prog_name="dockyard")
