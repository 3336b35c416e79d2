"""`python -m bandfusion.cli`: the same as the `bandfusion` command."""

from bandfusion.cli import main

main()
