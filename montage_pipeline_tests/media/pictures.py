"""Decoded pictures of rendered files, for tests that compare two renders frame by frame."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def lumas(path: Path) -> list[np.ndarray]:
    """Every frame's luma plane, in display order."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray").astype(np.float64) for f in c.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two 8-bit pictures (99 when identical)."""
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)
