"""`python -m zcpipe.cli`."""

from zcpipe.cli import main

main()
