"""Side-by-side comparison of training sets: does the generator's output help, honestly?

``run_compare`` trains classifiers on several *arms* of the same data split, with the same seeds,
for several repeats, and reports each arm's macro-F1, accuracy and AUC on the test split as mean ±
95% confidence interval over repeats, with corrected paired significance tests:

* ``real`` — the real training images only (the baseline);
* ``classic`` — the same images, each batch randomly rotated and shifted (:mod:`lagaug.core.classifier.classic`);
* ``METHOD`` — real images plus images synthesized from them by the generator method (e.g. ``vae``);
* ``classic+METHOD`` — both;
* ``duplicate`` — the control of Høj & Møgelmoose (2023, §5.3): as many extra images as the
  ``METHOD`` arm adds, but copies of the very source images they were made from. A gain that this
  arm shows too is not the generator's doing;
* ``pseudo-label`` — the practitioner's alternative to a generator: the repeat's reference
  ensemble labels the unlabelled pool, and the confident pool images join with their predicted
  labels (:mod:`.pseudo`);
* any other registered method ``M`` (``M``, ``classic+M``, ``M+gate``), and named variants of a
  method with their own options and class restriction (``--arm LABEL=METHOD:key=value,...``;
  :mod:`.arms`). Arms of one method with the same fit-time options share one fit per repeat
  (:mod:`.synth`); ``cut-paste`` is a baseline the methods under test are compared against.

A repeat ``r`` draws its own training subset when ``train_size`` is given (class-balanced, the
protocol of Garay-Maestre et al. 2019), carves the validation images out of those training images —
never the test set —, fits the generator on them, and synthesizes the extra images once; every arm
of the repeat then trains with the same classifier seeds.

Modules: :mod:`.config` (what it is told), :mod:`.arms` (arm names, sources, the comparisons),
:mod:`.draws` (per-repeat splits), :mod:`.run` (the run and its directory), :mod:`.synth`
(generator fits and synthetic images), :mod:`.pseudo` (the pseudo-label arm), :mod:`.summary`
(rows and corrected comparisons), :mod:`.results` (the files: results.md, .csv, .json, .png),
:mod:`.cells` (what one arm of one repeat trains on).
Statistics live in :mod:`lagaug.core.stats`.
"""

from lagaug.core.compare.arms import PSEUDO, Arm, Source, parse_variant
from lagaug.core.compare.config import CLASSIC, DUPLICATE, METRIC_NAMES, METRICS, PRIMARY_METRIC, REAL, CompareConfig
from lagaug.core.compare.draws import carve_validation, draw_subset
from lagaug.core.compare.results import COMPARISON_COLUMNS, RESULT_COLUMNS, p_text, pct
from lagaug.core.compare.run import Compare, CompareResult, run_compare
from lagaug.core.compare.summary import summarise_cells

__all__ = [
    "CLASSIC", "COMPARISON_COLUMNS", "DUPLICATE", "METRICS", "METRIC_NAMES", "PRIMARY_METRIC", "PSEUDO", "REAL",
    "RESULT_COLUMNS", "Arm", "Compare", "CompareConfig", "CompareResult", "Source", "carve_validation",
    "draw_subset", "p_text", "parse_variant", "pct", "run_compare", "summarise_cells",
]
