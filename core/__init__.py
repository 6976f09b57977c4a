"""Epochal's shared library: specs, networks, training, data sets and the SQL store.

`core` imports neither `api` nor `worker`; both build on it.
"""
