"""HTTP routers only: parse, call a service, shape the reply. No business logic here."""
