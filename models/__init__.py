"""Receipt understanding shared by scanner and server: schema, protocol, the read pipeline."""
