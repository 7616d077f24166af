"""Operations support: Prometheus metrics (`metrics`) and structured logs (`logs`)."""
