"""Thin Dash callbacks: read inputs, call metrics/store/api functions, return props or Patch."""
