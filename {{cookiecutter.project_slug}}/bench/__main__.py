"""``python -m bench``: the entry point ``make bench`` runs (see ``bench.run``)."""

from bench.run import main

main()
