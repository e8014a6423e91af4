"""`python -m monitor` runs the opsmon command line."""

from monitor.cli import main

raise SystemExit(main())
