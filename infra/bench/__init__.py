"""`tideflow bench`: tideflow's speed measured against the broker's own ceiling in one run.

`run_bench(BenchOptions(...), console)` runs the selected sections and returns every
figure (also written as JSON with `json_path`); see runner.py for the order and
report.py for the ratios.
"""

from infra.bench.options import PRESETS, SECTIONS, BenchOptions, Scale
from infra.bench.report import failed_sections
from infra.bench.runner import run_bench

__all__ = ["PRESETS", "SECTIONS", "BenchOptions", "Scale", "failed_sections", "run_bench"]
