"""``streambind mcp``: every endpoint of a streambind server as a tool of the Model Context
Protocol, its progress as MCP progress notifications (the official ``mcp`` SDK, an extra)."""
