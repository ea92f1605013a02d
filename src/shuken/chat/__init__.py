"""Use: conversations in the web chat, and the one governed path every generated answer takes."""
