"""Running the work: ``augment``'s hard-sample loop (:mod:`.loop`) and its options (:mod:`.config`), what ``augment`` and ``compare``
share when they start a job (:mod:`.job`: data, run folder, executor), and the generator API —
fit, load, sample (:mod:`.generators`) and the find region → encode → resample → decode → filter
pipeline every synthesis goes through (:mod:`.pipeline`). ``compare`` has its own package,
:mod:`lagaug.core.compare`; where the classifiers train is :mod:`lagaug.core.executor`."""
