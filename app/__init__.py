"""streambind's front end: the stream client, the terminal UI and the command line."""
