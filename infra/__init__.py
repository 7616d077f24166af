"""Operations as code: alert rules, dashboards, deployment files, Terraform and backups."""
