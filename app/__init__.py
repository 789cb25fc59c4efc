"""streambind's front end: the stream client, the terminal UI and the command line."""

#: The demo's workflows module: what ``streambind serve`` serves when no ``--workflows`` is
#: named, and what the embedded server of the TUI, ``call``, ``runs`` and ``follow`` serves.
DEMO = "streambind.server.demo"
