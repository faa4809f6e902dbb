"""What the debug panel, the Explorer and `rag embed`/`rag map` show, as plain data and figures."""
