"""A plugin manager that knows the example plugin, installed or not."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def example_plugins():
    """A plugin manager that knows the example plugin (installed or not)."""
    import lagaug_example_plugin
    from lagaug.core.plugins import make_plugin_manager

    pm = make_plugin_manager()
    if "jitter" not in pm.method_names():
        pm.add_plugin(lagaug_example_plugin, "example", distribution="lagaug-example-plugin")
    return pm
