"""Strain signals: call-event factors, per-agent baselines and audio features."""
