"""``python -m controller`` runs the driftscope CLI."""

from controller.cli import main

main()
