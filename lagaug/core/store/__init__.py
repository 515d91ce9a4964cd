"""The files a run leaves, and work kept across runs: atomic writes (:mod:`.atomic`: a file is
absent or complete), the run folder with its layout, resume and lock (:mod:`.rundir`), the
synthetic images and their manifest (:mod:`.synthetic`), a fitted generator's folder and the
checks on its ``generator.json`` (:mod:`.generator`; ``GeneratorMethod.save`` and ``load`` write
and read it), and the content-fingerprint cache of generator fits and baseline ensembles
(:mod:`.cache`)."""
