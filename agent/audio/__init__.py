"""Audio: file I/O (the only place that reads audio files) and G.711 codecs."""

SAMPLE_RATE = 8000
