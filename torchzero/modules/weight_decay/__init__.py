"""Weight decay."""
from .weight_decay import CautiousWeightDecay, DirectWeightDecay, RelativeWeightDecay, WeightDecay

__all__ = ["CautiousWeightDecay", "DirectWeightDecay", "RelativeWeightDecay", "WeightDecay"]
