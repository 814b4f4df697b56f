"""Linear operators: matrices that may be stored implicitly.

A module's :meth:`~torchzero.core.module.Module.get_H` returns one of these for the Hessian (or
its approximation) ``B`` over all parameters flattened into one vector. A consumer (a trust
region, a Newton-like step) only needs ``B v`` (:meth:`LinearOperator.matvec`) and the
solution of ``B x = b`` (:meth:`LinearOperator.solve`); how ``B`` is stored decides what those
cost:

* :class:`Dense` keeps ``B`` itself (``matvec`` is a product, ``solve`` a factorisation);
* :class:`DenseInverse` keeps ``H = B^-1``, as inverse quasi-Newton methods do (``solve`` is a
  product, ``matvec`` a factorisation);
* :class:`Diagonal` and :class:`ScaledIdentity` are ``diag(d)`` and ``s I``;
* :class:`BlockDiagonal` puts operators for separate pieces of the vector side by side.

Every operator is square, ``n x n``, and acts on 1-d tensors (``matmat`` on ``n x k`` ones).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch


def _solve_dense(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``A^-1 b``; least squares where ``A`` is singular."""
    vec = b.ndim == 1
    rhs = b.unsqueeze(-1) if vec else b
    x, info = torch.linalg.solve_ex(A, rhs)
    if info.item() != 0 or not torch.isfinite(x).all():
        x = torch.linalg.lstsq(A, rhs).solution
    return x.squeeze(-1) if vec else x


class LinearOperator(ABC):
    """A square linear map ``A`` on vectors of size :meth:`size`.

    Subclasses implement :meth:`matvec`, :meth:`size` and, when they can do better than forming
    the dense matrix, :meth:`solve`, :meth:`diagonal` and the rest.
    """

    # -- required -----------------------------------------------------------------
    @abstractmethod
    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """``A x``."""

    @abstractmethod
    def size(self) -> int:
        """``n``, the operator is ``n x n``."""

    # -- derived ------------------------------------------------------------------
    def rmatvec(self, x: torch.Tensor) -> torch.Tensor:
        """``A^T x`` (dense fallback)."""
        return self.to_tensor().T @ x

    def matmat(self, X: torch.Tensor) -> torch.Tensor:
        """``A X`` for an ``n x k`` matrix, column by column unless overridden."""
        return torch.stack([self.matvec(c) for c in X.unbind(1)], 1)

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        """``x`` with ``A x = b`` (least squares where ``A`` is singular)."""
        return _solve_dense(self.to_tensor(), b)

    def solve_plus_diag(self, b: torch.Tensor, d: float | torch.Tensor) -> torch.Tensor:
        """``x`` with ``(A + d I) x = b``; ``d`` a scalar or a vector of diagonal entries."""
        return self.add_diagonal(d).solve(b)

    def add_diagonal(self, d: float | torch.Tensor) -> "LinearOperator":
        """``A + diag(d)`` (``d`` a scalar or a vector)."""
        A = self.to_tensor()
        return Dense(A + _as_diag(d, A))

    def diagonal(self) -> torch.Tensor:
        """The diagonal of ``A`` as a vector."""
        return self.to_tensor().diagonal().clone()

    def inv(self) -> "LinearOperator":
        """``A^-1`` as an operator."""
        return DenseInverse(self.to_tensor())

    def transpose(self) -> "LinearOperator":
        return Dense(self.to_tensor().T)

    @property
    def T(self) -> "LinearOperator":
        return self.transpose()

    def to_tensor(self) -> torch.Tensor:
        """The dense ``n x n`` matrix (``A`` applied to the identity unless overridden)."""
        ref = self._ref()
        eye = torch.eye(self.size(), dtype=ref.dtype, device=ref.device)
        return self.matmat(eye)

    def to_dense(self) -> torch.Tensor:
        """Same as :meth:`to_tensor`."""
        return self.to_tensor()

    @property
    def shape(self) -> tuple[int, int]:
        n = self.size()
        return (n, n)

    def numel(self) -> int:
        return self.size() ** 2

    def is_dense(self) -> bool:
        """Whether the operator keeps an ``n x n`` matrix."""
        return False

    def _ref(self) -> torch.Tensor:
        """A tensor with the operator's dtype and device."""
        for v in vars(self).values():
            if isinstance(v, torch.Tensor):
                return v
        return torch.zeros(())

    @property
    def dtype(self) -> torch.dtype:
        return self._ref().dtype

    @property
    def device(self) -> torch.device:
        return self._ref().device

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        return self.matvec(x) if x.ndim == 1 else self.matmat(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size()})"


def _as_diag(d: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    n = like.shape[-1]
    if isinstance(d, torch.Tensor) and d.numel() > 1:
        return torch.diag(d.to(like))
    return torch.eye(n, dtype=like.dtype, device=like.device) * (d.item() if isinstance(d, torch.Tensor) else d)


class Dense(LinearOperator):
    """``A`` stored as an ``n x n`` matrix."""

    def __init__(self, A: torch.Tensor | LinearOperator):
        if isinstance(A, LinearOperator):
            A = A.to_tensor()
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"Dense needs a square matrix, got shape {tuple(A.shape)}")
        self.A = A

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        return self.A @ x

    def rmatvec(self, x: torch.Tensor) -> torch.Tensor:
        return self.A.T @ x

    def matmat(self, X: torch.Tensor) -> torch.Tensor:
        return self.A @ X

    def size(self) -> int:
        return self.A.shape[0]

    def to_tensor(self) -> torch.Tensor:
        return self.A

    def inv(self) -> LinearOperator:
        return DenseInverse(self.A)

    def transpose(self) -> LinearOperator:
        return Dense(self.A.T)

    def is_dense(self) -> bool:
        return True


class DenseInverse(LinearOperator):
    """``A`` given by its inverse ``A_inv`` (an ``n x n`` matrix), as inverse quasi-Newton methods keep it.

    ``solve(b) = A_inv b`` is a product; ``matvec(x)`` solves ``A_inv z = x``.
    """

    def __init__(self, A_inv: torch.Tensor):
        if A_inv.ndim != 2 or A_inv.shape[0] != A_inv.shape[1]:
            raise ValueError(f"DenseInverse needs a square matrix, got shape {tuple(A_inv.shape)}")
        self.A_inv = A_inv

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        return _solve_dense(self.A_inv, x)

    def rmatvec(self, x: torch.Tensor) -> torch.Tensor:
        return _solve_dense(self.A_inv.T, x)

    def matmat(self, X: torch.Tensor) -> torch.Tensor:
        return _solve_dense(self.A_inv, X)

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        return self.A_inv @ b

    def size(self) -> int:
        return self.A_inv.shape[0]

    def to_tensor(self) -> torch.Tensor:
        return torch.linalg.inv(self.A_inv)

    def inv(self) -> LinearOperator:
        return Dense(self.A_inv)

    def transpose(self) -> LinearOperator:
        return DenseInverse(self.A_inv.T)

    def is_dense(self) -> bool:
        return True


class Diagonal(LinearOperator):
    """``diag(d)`` for a vector ``d``."""

    def __init__(self, d: torch.Tensor):
        if d.ndim != 1:
            raise ValueError(f"Diagonal needs a vector, got shape {tuple(d.shape)}")
        self.d = d

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        return self.d * x

    def rmatvec(self, x: torch.Tensor) -> torch.Tensor:
        return self.d * x

    def matmat(self, X: torch.Tensor) -> torch.Tensor:
        return self.d.unsqueeze(1) * X

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        return b / (self.d if b.ndim == 1 else self.d.unsqueeze(1))

    def add_diagonal(self, d: float | torch.Tensor) -> LinearOperator:
        return Diagonal(self.d + d)

    def diagonal(self) -> torch.Tensor:
        return self.d

    def inv(self) -> LinearOperator:
        return Diagonal(1 / self.d)

    def transpose(self) -> LinearOperator:
        return self

    def size(self) -> int:
        return self.d.numel()

    def to_tensor(self) -> torch.Tensor:
        return torch.diag(self.d)


class ScaledIdentity(LinearOperator):
    """``s I`` of size ``n`` (``n`` may be left unknown: the operator then acts on any vector)."""

    def __init__(self, s: float | torch.Tensor = 1.0, n: int | None = None, device=None, dtype=None):
        self.s = s
        self.n = n
        self._device = device
        self._dtype = dtype

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.s

    def rmatvec(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.s

    def matmat(self, X: torch.Tensor) -> torch.Tensor:
        return X * self.s

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        return b / self.s

    def add_diagonal(self, d: float | torch.Tensor) -> LinearOperator:
        if isinstance(d, torch.Tensor) and d.numel() > 1:
            return Diagonal(d + self.s)
        return ScaledIdentity(self.s + d, self.n, self._device, self._dtype)

    def diagonal(self) -> torch.Tensor:
        return torch.full((self.size(),), float(self.s), dtype=self.dtype, device=self.device)

    def inv(self) -> LinearOperator:
        return ScaledIdentity(1 / self.s, self.n, self._device, self._dtype)

    def transpose(self) -> LinearOperator:
        return self

    def size(self) -> int:
        if self.n is None:
            raise RuntimeError("this ScaledIdentity has no fixed size")
        return self.n

    def to_tensor(self) -> torch.Tensor:
        return torch.eye(self.size(), dtype=self.dtype, device=self.device) * self.s

    @property
    def dtype(self) -> torch.dtype:
        if isinstance(self.s, torch.Tensor):
            return self.s.dtype
        return self._dtype if self._dtype is not None else torch.get_default_dtype()

    @property
    def device(self) -> torch.device:
        if isinstance(self.s, torch.Tensor):
            return self.s.device
        return torch.device(self._device if self._device is not None else "cpu")


class BlockDiagonal(LinearOperator):
    """Operators for consecutive pieces of the vector: ``diag(A_1, ..., A_k)``."""

    def __init__(self, blocks: Sequence[LinearOperator]):
        if not blocks:
            raise ValueError("BlockDiagonal needs at least one block")
        self.blocks = list(blocks)
        self._sizes = [b.size() for b in self.blocks]

    def _split(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(x, self._sizes, dim=0))

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b.matvec(p) for b, p in zip(self.blocks, self._split(x))])

    def rmatvec(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b.rmatvec(p) for b, p in zip(self.blocks, self._split(x))])

    def matmat(self, X: torch.Tensor) -> torch.Tensor:
        return torch.cat([b.matmat(p) for b, p in zip(self.blocks, self._split(X))])

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([blk.solve(p) for blk, p in zip(self.blocks, self._split(b))])

    def add_diagonal(self, d: float | torch.Tensor) -> LinearOperator:
        if isinstance(d, torch.Tensor) and d.numel() > 1:
            return BlockDiagonal([b.add_diagonal(p) for b, p in zip(self.blocks, self._split(d))])
        return BlockDiagonal([b.add_diagonal(d) for b in self.blocks])

    def diagonal(self) -> torch.Tensor:
        return torch.cat([b.diagonal() for b in self.blocks])

    def inv(self) -> LinearOperator:
        return BlockDiagonal([b.inv() for b in self.blocks])

    def transpose(self) -> LinearOperator:
        return BlockDiagonal([b.transpose() for b in self.blocks])

    def size(self) -> int:
        return sum(self._sizes)

    def to_tensor(self) -> torch.Tensor:
        return torch.block_diag(*[b.to_tensor() for b in self.blocks])

    def _ref(self) -> torch.Tensor:
        return self.blocks[0]._ref() if not isinstance(self.blocks[0], ScaledIdentity) else self.blocks[0].diagonal()

    def is_dense(self) -> bool:
        return any(b.is_dense() for b in self.blocks)
