"""The reasoning library: everything the service computes, with no Ray in it.

Schemas, upload readers, filters, model families, the ReasoningModel, metrics, and the
pipeline's stages as plain functions; `reasoning.service` holds the service's
infrastructure beside it (auth, stores, jobs, egress). See docs/ARCHITECTURE.md for the map.
"""
