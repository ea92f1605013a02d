"""The gateway service: OpenAI-shaped requests in, engine calls, OpenAI-shaped results out. No HTTP here."""
