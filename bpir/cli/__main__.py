"""``python -m bpir.cli``."""

from . import main

raise SystemExit(main())
