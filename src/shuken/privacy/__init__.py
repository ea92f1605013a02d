"""Privacy: a data subject's erasure and the scheduled retention sweep, across knowledge, chat and audit content."""
