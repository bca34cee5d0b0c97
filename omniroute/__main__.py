"""`python -m omniroute`: the same as the `omniroute` command."""

from .cli import main

raise SystemExit(main())
