"""A minimal lagaug plugin: the ``jitter`` method and a logger hook.

The "latent" of an image is the image itself; resampling adds seeded Gaussian noise of strength
``sigma``. It is here to show (and test) the road every third-party plugin takes: an entry point in
the ``lagaug`` group, a ``lagaug_register_methods`` hook, and optional stage or logger hooks.
"""

from lagaug import hookimpl

ITERATIONS_SEEN = []


@hookimpl
def lagaug_register_methods(register):
    # A "module:Class" string keeps torch out of `lagaug list-plugins`.
    register("lagaug_example_plugin.method:JitterMethod", name="jitter",
             description="Gaussian pixel jitter (example third-party plugin)")


@hookimpl
def lagaug_iteration_end(iteration, metrics, added, run_dir):
    ITERATIONS_SEEN.append((iteration, added))
