"""Forecasts for the controller: load per tier, PV, grid outage schedules (issue 5)."""
