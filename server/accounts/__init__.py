"""People of an organisation: users, roles, passwords, web sessions, invitations, audit log."""
