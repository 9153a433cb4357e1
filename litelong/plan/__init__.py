"""`litelong plan`: what a run will cost before it starts (time, machine-hours, bytes, GPU
memory), from formulas over measured rates (docs/plan.md), and how the run compared after.

Modules: one estimator per kind (`debate`, `index`, `synthesis`, `training`), `planner` (all of
a file in dependency order), `probes` and `calibration` (`--calibrate`), `render` (table and
JSON), `cluster` (the operator's status.plan and ETA: pure, no stage engines), `actual` (plan
beside actual after a run). Nothing is imported here, so the operator can import `cluster`
without the stages' engines.
"""
