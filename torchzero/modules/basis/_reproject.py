"""Which state buffers of an inner optimizer must follow a change of basis, and how.

A module run inside a rotated basis (``SOAPBasis``, ``GGTBasis``) keeps buffers expressed in that
basis. When the basis changes they are re-expressed in the new one, according to what they hold:

* ``"grad"``: linear in the gradient (momentum, previous gradient): rotated like a vector;
* ``"grad_sq"``: elementwise magnitudes (second moments, accumulated squares): a diagonal that has
  no exact image in a rotated basis; re-ordered with the basis in SOAP, mapped by the squared
  change of basis in GGT (see the modules).

A module declares its buffers with a ``projected_keys`` attribute (``{kind: (state keys...)}``);
for the library's modules the table below gives them. Buffers of modules not listed (and modules
that use the parameter values, such as weight decay) are left as they are.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ...core.module import Module

KINDS = ("grad", "grad_sq")

PROJECTED_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "Adam": {"grad": ("exp_avg",), "grad_sq": ("exp_avg_sq", "max_exp_avg_sq")},
    "RMSprop": {"grad": ("exp_avg",), "grad_sq": ("exp_avg_sq", "max_exp_avg_sq")},
    "Adagrad": {"grad_sq": ("accumulator",)},
    "Adan": {"grad": ("exp_avg", "exp_avg_diff", "prev"), "grad_sq": ("exp_avg_sq",)},
    "Lion": {"grad": ("exp_avg",)},
    "MARSCorrection": {"grad": ("prev",)},
    "EMA": {"grad": ("momentum_buffer",)},
    "HeavyBall": {"grad": ("momentum_buffer",)},
    "NAG": {"grad": ("momentum_buffer",)},
    "ClipNormByEMA": {"grad": ("ema",)},
    "NormalizeByEMA": {"grad": ("ema",)},
    "ClipValueByEMA": {"grad_sq": ("ema_abs",)},
    "EMASquared": {"grad_sq": ("exp_avg_sq", "max_exp_avg_sq")},
    "SqrtEMASquared": {"grad_sq": ("exp_avg_sq", "max_exp_avg_sq")},
}


def projected_keys(module: Module) -> dict[str, tuple[str, ...]]:
    declared = getattr(module, "projected_keys", None)
    if declared is not None:
        return declared
    return PROJECTED_KEYS.get(type(module).__name__, {})


def reproject_buffers(root: Module, fake: torch.Tensor, maps: dict[str, Callable[[torch.Tensor], torch.Tensor]]) -> None:
    """Replaces each declared buffer of every module under ``root`` keyed by ``fake`` with
    ``maps[kind](buffer)`` (kinds missing from ``maps`` are left alone)."""
    for m in root.modules():
        keys = projected_keys(m)
        if not keys or fake not in m.state:
            continue
        st = m.state[fake]
        for kind, names in keys.items():
            fn = maps.get(kind)
            if fn is None:
                continue
            for name in names:
                buf = st.get(name)
                if isinstance(buf, torch.Tensor) and buf.shape == fake.shape:
                    st[name] = fn(buf)


def fakes_of(module: Module, key: str) -> Sequence[torch.Tensor] | None:
    return module._fake_params.get(key)
