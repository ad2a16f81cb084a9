"""Metrics: KPI definitions as pure functions over pandas frames (:mod:`.kpis`) and the frame loader (:mod:`.frames`)."""
