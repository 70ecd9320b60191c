"""Core: configuration, database types and upsert, time, HTTP and the event bus.

Imports no bounded context.
"""
