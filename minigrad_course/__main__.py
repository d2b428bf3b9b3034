"""``python -m minigrad_course <command>``: the course tooling's command line."""
from .cli import main

raise SystemExit(main())
