"""streambind's demo: a workflows module like any user's, served by ``streambind serve`` when
no ``--workflows`` is named (and by the TUI's embedded server).

Its workflows, in the order ``GET /api/endpoints`` lists them: a real import into the
``people`` table (SQLite, or PostgreSQL with ``--database``), the same as three named steps,
an export to a file, AI-style text, and three that show the other extremes (a failure, no
streaming message at all, a firehose). Its resources: the database, and the exports folder.
The framework never imports this package; it is registered as ``streambind.server.demo``.
"""

from __future__ import annotations

# In the order GET /api/endpoints lists them (the module's attributes, as they are bound).
from .importing import import_rows, pipeline  # isort: skip
from .export import export  # isort: skip
from .report import write_text  # isort: skip
from .extremes import flaky, silent, firehose  # isort: skip
from .resources import database, exports  # isort: skip
from .settings import DemoSettings  # isort: skip

__all__ = [
    "DemoSettings",
    "database",
    "export",
    "exports",
    "firehose",
    "flaky",
    "import_rows",
    "pipeline",
    "silent",
    "write_text",
]

#: The name to register it by (``--workflows``, ``build_registry``).
MODULE = __name__
