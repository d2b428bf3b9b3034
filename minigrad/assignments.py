"""``python -m minigrad.assignments``: kept as an alias of ``python -m minigrad_course``, the course
tooling's own package beside the engine (the engine never imports it). In a copy whose task block
does not compile, use ``python -m minigrad_course``: this alias must import minigrad first."""
from minigrad_course.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
