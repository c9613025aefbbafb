"""G.711 µ-law and A-law, encode and decode, as pure numpy (ITU-T G.711 segment tables)."""

from __future__ import annotations

import numpy as np


def _ulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return np.where(sign, magnitude, -magnitude).astype(np.int16)


ULAW_TO_PCM16 = _ulaw_decode_table()
ALAW_TO_PCM16 = _alaw_decode_table()
ULAW_TO_FLOAT = (ULAW_TO_PCM16.astype(np.float32) / 32768.0)
ALAW_TO_FLOAT = (ALAW_TO_PCM16.astype(np.float32) / 32768.0)


def _ulaw_encode_table() -> np.ndarray:
    """µ-law code for every 16-bit value, with G.711's segment truncation (as sox encodes)."""
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), 8159) + 33
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), mag)
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    return (code ^ mask).astype(np.uint8)


def _alaw_encode_table() -> np.ndarray:
    """A-law code for every 16-bit value, with G.711's segment truncation (as sox encodes)."""
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), mag)
    mant = np.where(seg < 2, (mag >> 1) & 0x0F, (mag >> np.maximum(seg, 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, (seg << 4) | mant)
    return (code ^ mask).astype(np.uint8)


_PCM16_TO_ULAW = _ulaw_encode_table()
_PCM16_TO_ALAW = _alaw_encode_table()


def _to_pcm16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int32)


def ulaw_encode(samples: np.ndarray) -> bytes:
    """Encode float samples in [-1, 1] as µ-law bytes."""
    return _PCM16_TO_ULAW[_to_pcm16(samples) + 32768].tobytes()


def alaw_encode(samples: np.ndarray) -> bytes:
    """Encode float samples in [-1, 1] as A-law bytes."""
    return _PCM16_TO_ALAW[_to_pcm16(samples) + 32768].tobytes()


def ulaw_decode(payload: bytes | np.ndarray) -> np.ndarray:
    """Decode µ-law bytes to float32 samples."""
    return ULAW_TO_FLOAT[np.frombuffer(payload, dtype=np.uint8)]


def alaw_decode(payload: bytes | np.ndarray) -> np.ndarray:
    """Decode A-law bytes to float32 samples."""
    return ALAW_TO_FLOAT[np.frombuffer(payload, dtype=np.uint8)]
