"""Linear operators (torchzero.linalg): every operator agrees with its dense matrix."""
from __future__ import annotations

import pytest
import torch

from torchzero.linalg import BlockDiagonal, Dense, DenseInverse, Diagonal, LinearOperator, ScaledIdentity

N = 6


def _spd(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    return A @ A.T + n * torch.eye(n, dtype=torch.float64)


def _operators() -> list[tuple[str, LinearOperator, torch.Tensor]]:
    A = _spd(N, 0)
    d = torch.linspace(0.5, 3.0, N, dtype=torch.float64)
    B = _spd(2, 1)
    blocks = BlockDiagonal([Dense(_spd(3, 2)), Diagonal(d[:1]), DenseInverse(B), ScaledIdentity(2.0, 1, dtype=torch.float64)])
    return [
        ("dense", Dense(A), A),
        ("dense-nonsym", Dense(A + torch.triu(A, 1)), A + torch.triu(A, 1)),
        ("dense_inverse", DenseInverse(A), torch.linalg.inv(A)),
        ("diagonal", Diagonal(d), torch.diag(d)),
        ("scaled_identity", ScaledIdentity(2.5, N, dtype=torch.float64), 2.5 * torch.eye(N, dtype=torch.float64)),
        ("block_diagonal", blocks, torch.block_diag(_spd(3, 2), d[:1].diag(), torch.linalg.inv(B), 2 * torch.eye(1, dtype=torch.float64))),
    ]


OPS = _operators()


@pytest.mark.parametrize("name, op, M", OPS, ids=[o[0] for o in OPS])
def test_operator_matches_dense(name: str, op: LinearOperator, M: torch.Tensor) -> None:
    n = M.shape[0]
    x = torch.linspace(-1, 2, n, dtype=torch.float64)
    X = torch.stack([x, x.flip(0), x ** 2], 1)
    assert op.size() == n and op.shape == (n, n)
    torch.testing.assert_close(op.to_tensor(), M)
    torch.testing.assert_close(op.to_dense(), M)
    torch.testing.assert_close(op.matvec(x), M @ x)
    torch.testing.assert_close(op @ x, M @ x)
    torch.testing.assert_close(op.rmatvec(x), M.T @ x)
    torch.testing.assert_close(op.matmat(X), M @ X)
    torch.testing.assert_close(op.solve(x), torch.linalg.solve(M, x))
    torch.testing.assert_close(op.diagonal(), M.diagonal())
    torch.testing.assert_close(op.inv().to_tensor(), torch.linalg.inv(M))
    torch.testing.assert_close(op.T.to_tensor(), M.T)
    torch.testing.assert_close(op.add_diagonal(0.7).to_tensor(), M + 0.7 * torch.eye(n, dtype=M.dtype))
    dvec = torch.linspace(0.1, 0.9, n, dtype=torch.float64)
    torch.testing.assert_close(op.add_diagonal(dvec).to_tensor(), M + torch.diag(dvec))
    torch.testing.assert_close(op.solve_plus_diag(x, 0.3), torch.linalg.solve(M + 0.3 * torch.eye(n, dtype=M.dtype), x))
    assert op.dtype == torch.float64


def test_dense_inverse_solve_is_a_product() -> None:
    H = _spd(4, 3)
    op = DenseInverse(H)
    g = torch.ones(4, dtype=torch.float64)
    assert torch.equal(op.solve(g), H @ g)
    assert op.inv().is_dense() and isinstance(op.inv(), Dense)


def test_singular_dense_solve_falls_back_to_least_squares() -> None:
    A = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    x = Dense(A).solve(torch.tensor([2.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(x, torch.tensor([2.0, 0.0], dtype=torch.float64))


def test_scaled_identity_without_size_acts_on_any_vector() -> None:
    op = ScaledIdentity(3.0)
    x = torch.arange(5.0)
    torch.testing.assert_close(op.matvec(x), 3 * x)
    torch.testing.assert_close(op.solve(x), x / 3)
    with pytest.raises(RuntimeError, match="size"):
        op.size()


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="square"):
        Dense(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="vector"):
        Diagonal(torch.zeros(2, 2))
