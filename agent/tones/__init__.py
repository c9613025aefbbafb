"""Call-progress tones: country tone plans, tone synthesis, and streaming tone/SIT/fax detection.

Levels are in dBFS as AES17 defines them (a full-scale sine is 0 dBFS, so a signal's level
is ``20 log10(rms * sqrt(2))``); with G.711 a 0 dBm0 sine sits at -3.14 dBFS.
"""

DBM0_DBFS = -3.14
"""The level in dBFS of a 0 dBm0 sine (G.711's maximum is +3.14 dBm0)."""


def dbm0_to_dbfs(dbm0: float) -> float:
    """A level in dBm0 as dBFS (AES17: full-scale sine = 0 dBFS)."""
    return dbm0 + DBM0_DBFS
