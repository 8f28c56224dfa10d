"""mmcurate: multimodal dataset construction and alignment on Apache Beam.

The code lives in three sub-packages that map onto the repository's top-level folders:
``mmcurate.schemas`` (data definitions), ``mmcurate.filters`` (pure per-sample logic) and
``mmcurate.pipelines`` (Beam stages, sources, sinks and the CLI).
"""

__version__ = "0.1.0"
