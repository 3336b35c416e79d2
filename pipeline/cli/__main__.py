"""`python -m bandfusion.cli`: the same as the `bandfusion` command."""

from . import main

main()
