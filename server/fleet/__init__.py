"""Fleet management: enrolment, broker access, health, desired configuration and commands."""
