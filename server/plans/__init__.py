"""Plans of an organisation (Starter, Pro, Business, Enterprise), their features and quotas."""
