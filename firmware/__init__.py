"""What makes a Raspberry Pi a scanner: systemd units, image recipe, GPIO feedback, first boot."""
