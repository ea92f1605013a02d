"""Know: ingest documents, index them per language, retrieve with access checks, answer with citations."""
