"""A plugin manager that knows the example plugin, installed or not."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def example_plugins():
    """A plugin manager that knows the example plugin (installed or not)."""
    import lagaug_example_plugin

    from lagaug import make_plugin_manager

    pm = make_plugin_manager()
    if "jitter" in pm.method_names():  # installed: found through its entry point
        return pm
    return make_plugin_manager(extra_plugins=[("example", lagaug_example_plugin)])
