"""Planners' toolkit: closed-loop simulation, baselines, survival analysis, sizing sweeps, plots."""
