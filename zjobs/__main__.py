"""`python -m zjobs`: the same as the `zjobs` command."""

from zjobs.cli import script

script()
