"""Persistent stores behind small interfaces (SQLite here; PostgreSQL can sit behind the same).

:mod:`agent.store.library` keeps the announcement library: entries, their fingerprints and,
for unknown announcements, their audio.
"""
