"""The core's own hook implementations, registered from one place (:data:`DEFAULTS`, read by
:func:`lagaug.core.contract.plugins.make_plugin_manager`): the default stages that hand encode,
resample, decode and scoring to the chosen method (:mod:`.stages`), the hard-sample scorer and
selector (:mod:`.hardness`), and label fidelity with the quality gate (:mod:`.quality`). A plugin
overrides any of them by implementing the same hook."""

from __future__ import annotations

from lagaug.core.defaults import hardness, quality, stages

# (plugin name, module): the names ``lagaug list-plugins`` shows and ``--set NAME.key=value`` uses
DEFAULTS = (("core", stages), ("hardness", hardness), ("quality", quality))
