"""Training diagnostics: is the model using the image?

A vision-language model that has learned only the text prior (the answer distribution, the
format) is the most common silent failure of small-scale VLM training: its loss falls and
its answers look plausible, but swapping the images changes nothing. ``image_reliance``
measures it directly: on a fixed held batch, the completion loss with each example's own
image minus the loss with the images rotated across the batch (example i sees image i+1).
Near 0 means the model ignores the picture; it grows as the completion comes to depend on it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("groundkit.training")

METRIC = "groundkit/image_reliance"
#: Reliance below this (nats per completion token) after ``warn_after`` steps triggers the warning.
BLIND_THRESHOLD = 0.02


def held_rows(dataset: Any, n: int) -> list[dict[str, Any]]:
    """The first ``n`` rows with an image, as plain dicts (prompt, completion, images)."""
    rows: list[dict[str, Any]] = []
    for row in dataset:
        if row.get("images"):
            rows.append({k: row[k] for k in ("prompt", "completion", "images")})
        if len(rows) == n:
            break
    return rows


def completion_loss(model: Any, collator: Any, rows: Sequence[dict[str, Any]]) -> float:
    """Mean cross-entropy per completion token of ``rows`` (no gradient)."""
    import torch

    batch = collator([{k: (list(v) if isinstance(v, list) else v) for k, v in r.items()} for r in rows])
    device = next(model.parameters()).device
    batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(**batch)
    finally:
        model.train(was_training)
    return float(out.loss)


def image_reliance(model: Any, collator: Any, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Loss with the true images, with the images rotated across the rows, and their difference."""
    if len(rows) < 2:
        raise ValueError("image reliance needs at least 2 held rows (images are swapped between them)")
    true = completion_loss(model, collator, rows)
    rotated = [{**r, "images": rows[(i + 1) % len(rows)]["images"]} for i, r in enumerate(rows)]
    swapped = completion_loss(model, collator, rotated)
    return {"loss_true_images": true, "loss_swapped_images": swapped, "image_reliance": swapped - true}


def vision_collator(processor: Any) -> Any:
    """TRL's vision-language collator with the loss on completion tokens only."""
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    return DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True)


def image_reliance_callback(processor: Any, rows: Sequence[dict[str, Any]], every: int = 50,
                            warn_after: int = 200) -> Any:
    """A TrainerCallback logging ``groundkit/image_reliance`` every ``every`` steps (and at step 0
    and the last step); warns once when it is still below ``BLIND_THRESHOLD`` after ``warn_after`` steps."""
    from transformers import TrainerCallback

    collator = vision_collator(processor)
    held = list(rows)

    class ImageReliance(TrainerCallback):
        def __init__(self) -> None:
            self.history: list[dict[str, float]] = []
            self.warned = False

        def _measure(self, state: Any, model: Any) -> dict[str, float]:
            values = image_reliance(model, collator, held)
            values["step"] = state.global_step
            self.history.append(values)
            log.info("step %d: image reliance %.4f nats/token (loss %.4f with true images, %.4f swapped)",
                     state.global_step, values["image_reliance"], values["loss_true_images"], values["loss_swapped_images"])
            state.log_history.append({METRIC: values["image_reliance"], "groundkit/loss_true_images": values["loss_true_images"],
                                      "groundkit/loss_swapped_images": values["loss_swapped_images"], "step": state.global_step})
            if (not self.warned and state.global_step >= warn_after and math.isfinite(values["image_reliance"])
                    and values["image_reliance"] < BLIND_THRESHOLD):
                self.warned = True
                log.warning(
                    "image reliance is %.4f nats/token after %d steps: the model barely uses the image (its loss "
                    "is the same with the images swapped). Check the image features reach the model, the image "
                    "resolution, the learning rate, and whether the task can be solved from the text alone.",
                    values["image_reliance"], state.global_step)
            return values

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if held and model is not None and state.is_world_process_zero:
                self._measure(state, model)
            return control

        def on_step_end(self, args, state, control, model=None, **kwargs):
            last = state.max_steps and state.global_step >= state.max_steps
            if held and model is not None and state.is_world_process_zero and (state.global_step % every == 0 or last):
                self._measure(state, model)
            return control

    return ImageReliance()
