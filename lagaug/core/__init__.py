"""The lagaug core: everything a run does, with no method in it. Its folders, by what a reader looks for:

* :mod:`.contract` — the hooks, the plugin manager and method registry, the method contract;
* :mod:`.defaults` — the core's own hook implementations (stages, scorer, selector, quality gate);
* :mod:`.run` — ``augment``'s loop, the job it shares with ``compare``, fit / load / sample, the
  stage pipeline;
* :mod:`.compare` — ``lagaug compare``: arms, repeats, pseudo-labels, results;
* :mod:`.executor` — where members and cells run (this process, or Ray);
* :mod:`.store` — the run folder, synthetic images, generator folders, atomic writes, the cache;
* :mod:`.classifier` — the ensemble every figure comes from, its presets and models;
* :mod:`.data` — image sets, folders, ``.npz``, the embedded set, pools;
* :mod:`.regions` — where the defect is, and keeping it.

Beside them, modules any of these use: :mod:`.config` (options ↔ JSON ↔ ``--set``),
:mod:`.errors`, :mod:`.progress`, :mod:`.runtime` (seeds, devices, the optimiser kernel, freed
memory), :mod:`.threads`, :mod:`.stats` and :mod:`.metrics`, :mod:`.plots` (figures and image grids of a run),
:mod:`.foreign` (other implementations' checkpoints, read safely) and :mod:`.ensemble` (an old
import path of the classifier ensemble).
"""
