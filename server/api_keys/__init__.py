"""API keys of an organisation: scoped (read, read-write), expiring, revocable, hashed at rest."""
