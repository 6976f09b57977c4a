"""The learning-rate finder's spec: the range test of Smith (2017), as fastai's `lr_find` and
Lightning's `Tuner.lr_find` run it. Run in `core/training/lr_finder.py`.

`training.lr_finder` grows the learning rate exponentially from `min_lr` to `max_lr` over
`steps` steps (one batch each, cycling the training data), smooths the loss, and stops early
once it diverges. With the optimizer's `learning_rate: "suggested"` the job then trains at the
suggested rate; with a number, the job is the range test alone.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from core.spec.base import Spec

# The optimizer's learning_rate that asks for the finder's suggestion (core/spec/schedules.py
# accepts it; core/training/lr_finder.py resolves it).
SUGGESTED = "suggested"


class LrFinderSpec(Spec):
    min_lr: float = Field(1e-7, gt=0, le=1e6, description="the first step's learning rate")
    max_lr: float = Field(10.0, gt=0, le=1e6, description="the last step's learning rate")
    # Not fastai's and Lightning's 100: the smoothed loss lags beta / (1 - beta) steps (9 at
    # 0.9), over 8 decades 0.72 of a decade at 100 steps (a factor 5 in rate), 0.36 at 200, so
    # the minimum it finds sits nearer the true one; on digits min_lr_div_10 then trains within
    # 1 pp of a grid's best on 10 seeds of 10 (8 of 10 at 100 steps; bench/lr_finder_digits.py).
    steps: int = Field(200, ge=5, le=10_000, description="steps (one batch each) of the test")
    # Not fastai's 0.98: a moving average lags beta / (1 - beta) steps (49 at 0.98, a quarter of
    # a 200-step test), which drags the curve's minimum towards rates that diverge.
    smoothing: float = Field(
        0.9, ge=0, lt=1, description="the loss's exponential moving average factor"
    )
    diverge: float = Field(
        4.0, gt=1, description="stop once the smoothed loss exceeds this many times its best"
    )

    @model_validator(mode="after")
    def _rising(self) -> LrFinderSpec:
        if self.min_lr >= self.max_lr:
            raise ValueError(
                f"expected min_lr < max_lr. Received: min_lr={self.min_lr}, max_lr={self.max_lr}"
            )
        return self


def _defaults_for_true(value: Any) -> Any:
    """`true` runs the test with its defaults; `false` is no test."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


LrFinder = Annotated[LrFinderSpec | None, BeforeValidator(_defaults_for_true)]
