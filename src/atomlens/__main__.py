"""``python -m atomlens`` runs the command line."""

from atomlens.cli import main

main()
