"""The owner's dashboard: server-rendered pages under /app, signed in with a session cookie."""
