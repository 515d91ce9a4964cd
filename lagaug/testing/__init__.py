"""Test helpers for lagaug and its plugins (imports pytest; not loaded by lagaug itself).

* :class:`MethodContract` — the one contract test every generator method runs (the built-ins,
  the example plugin, and yours): subclass it in a test module, name the method, give a tiny
  configuration.
* :func:`learnable_set` / :func:`learnable_splits` / :func:`learnable_npz` — tiny image sets that
  a tiny classifier can learn but not perfectly, so tests compare figures that can differ.
"""

from lagaug.testing.contract import MethodContract
from lagaug.testing.data import learnable_npz, learnable_set, learnable_splits

__all__ = ["MethodContract", "learnable_npz", "learnable_set", "learnable_splits"]
