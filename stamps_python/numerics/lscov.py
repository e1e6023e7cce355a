"""Weighted least squares as MATLAB ``lscov(G, B, V)``: the solution operator and its use."""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular


def lscov_operator(G: np.ndarray, V: np.ndarray | None = None) -> np.ndarray:
    """Matrix M (p, n) of the weighted least-squares solution ``m = M @ d`` of ``G m = d``.

    ``V`` (n, n) is the data covariance (MATLAB ``lscov(G, d, V)``); None means identity. A
    positive-definite V is whitened by its Cholesky factor; otherwise its pseudo-inverse is used.
    A rank-deficient G gives the minimum-norm solution.
    """
    G = np.asarray(G, dtype=np.float64)
    if V is None:
        return np.linalg.pinv(G)
    V = np.asarray(V, dtype=np.float64)
    try:
        L = np.linalg.cholesky(V)
    except np.linalg.LinAlgError:
        Vi = np.linalg.pinv(V, hermitian=True)
        return np.linalg.pinv(G.T @ Vi @ G) @ G.T @ Vi
    Li = solve_triangular(L, np.eye(len(V)), lower=True)
    return np.linalg.pinv(Li @ G) @ Li


def lscov(G: np.ndarray, B: np.ndarray, V: np.ndarray | None = None) -> np.ndarray:
    """Weighted least-squares solution (p, k) of ``G m = B`` for every column of ``B`` (n, k)."""
    return lscov_operator(G, V) @ np.asarray(B, dtype=np.float64)
