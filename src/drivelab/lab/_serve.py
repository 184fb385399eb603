"""``python -m drivelab.lab._serve ARGS``: JupyterLab's own entry point, started faster.

jsonschema imports ``rfc3987_syntax``, when installed, to check the ``iri``
formats, and that module compiles some 35 parsers as it is imported: seconds
on a small CPU, most of JupyterLab's start. No schema the Jupyter server
checks uses those formats, so the server process goes without it (jsonschema
treats it as not installed). Everything else is ``python -m jupyterlab``.
"""

from __future__ import annotations

import sys


def main() -> None:
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]  # import now fails fast
    from jupyterlab.labapp import main as lab_main  # only after the line above: jsonschema then goes without it

    sys.exit(lab_main())


if __name__ == "__main__":
    main()
