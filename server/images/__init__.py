"""Where receipt images are kept: an `ImageStore` interface and its plugins, chosen by config."""
