"""Built-in plugins, one sub-package each, plus the default scorer and selector (hardness)."""
