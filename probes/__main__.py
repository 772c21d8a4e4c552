"""``python -m probes``: see `probes.cli`."""

from .cli import main

raise SystemExit(main())
