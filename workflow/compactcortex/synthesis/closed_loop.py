"""Scoring the closed loop (docs/method.md section 5): do a neuron's synthesised images drive it as its model says?

The stimulus set (``synthesis.stimulus_set``) was shown in a new session. Per neuron with a compact model:

* maximizing images vs the control natural images: a one-sided permutation test of the difference of the mean
  repeat-averaged spike counts (the paper's test), and the drive ratio: the mean response to the maximizing images
  over the mean response to the controls (true rates where the data are simulated, recorded responses otherwise);
* the same test for the most-driving natural images, and (the other side) for the minimizing images;
* adversarial images: does the response move from its source image's in the intended direction (up or down)?
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from compactcortex.io.stimulus_sets import (
    ADVERSARIAL_DOWN,
    ADVERSARIAL_UP,
    CONTROL,
    MAXIMIZING,
    MINIMIZING,
    NATURAL_TOP,
)


def permutation_p_value(
    sample: np.ndarray, reference: np.ndarray, rng: np.random.Generator, n_permutations: int
) -> float:
    """One-sided p of mean(sample) > mean(reference) under exchangeable labels: (1 + #{null >= observed}) / (1 + n)."""
    sample, reference = np.asarray(sample, float), np.asarray(reference, float)
    if sample.size == 0 or reference.size == 0:
        return float("nan")
    pooled = np.concatenate([sample, reference])
    observed = sample.mean() - reference.mean()
    draws = np.argsort(rng.random((n_permutations, pooled.size)), axis=1)[:, : sample.size]
    chosen = pooled[draws].sum(axis=1)
    null = chosen / sample.size - (pooled.sum() - chosen) / reference.size
    return float((1 + np.count_nonzero(null >= observed - 1e-12)) / (1 + n_permutations))


def closed_loop_tables(
    stimuli: pd.DataFrame,
    recorded: pd.DataFrame,
    true_rates: pd.DataFrame | None,
    rng: np.random.Generator,
    n_permutations: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-neuron scores, per-adversarial-image table).

    ``recorded`` and ``true_rates``: image x neuron tables (repeat-averaged spike counts; noiseless rates).
    """
    controls = stimuli.loc[stimuli["stimulus"] == CONTROL, "image"].to_numpy()
    drive = true_rates if true_rates is not None else recorded
    rows, adversarial_rows = [], []
    for neuron in sorted(set(stimuli["neuron"]) - {""}):
        if neuron not in recorded.columns:
            continue  # not recorded in the closed-loop session (e.g. not matched)
        mine = stimuli[stimuli["neuron"] == neuron]
        images = {
            kind: mine.loc[mine["stimulus"] == kind, "image"].to_numpy()
            for kind in (MAXIMIZING, MINIMIZING, NATURAL_TOP)
        }
        response = recorded[neuron]
        control_mean = response[controls].mean()
        rows.append(
            {
                "neuron": neuron,
                "n_maximizing": len(images[MAXIMIZING]),
                "recorded_maximizing": response[images[MAXIMIZING]].mean(),
                "recorded_natural_top": response[images[NATURAL_TOP]].mean(),
                "recorded_minimizing": response[images[MINIMIZING]].mean(),
                "recorded_controls": control_mean,
                "p_maximizing_beats_natural": permutation_p_value(
                    response[images[MAXIMIZING]], response[controls], rng, n_permutations
                ),
                "p_natural_top_beats_natural": permutation_p_value(
                    response[images[NATURAL_TOP]], response[controls], rng, n_permutations
                ),
                "p_minimizing_below_natural": permutation_p_value(
                    -response[images[MINIMIZING]], -response[controls], rng, n_permutations
                ),
                "drive_ratio": drive[neuron][images[MAXIMIZING]].mean() / drive[neuron][controls].mean(),
                "drive_ratio_natural_top": drive[neuron][images[NATURAL_TOP]].mean() / drive[neuron][controls].mean(),
                "max_synthesised_over_max_control": drive[neuron][images[MAXIMIZING]].max()
                / drive[neuron][controls].max(),
                "drive_from": "true rates" if true_rates is not None else "recorded responses",
            }
        )
        for _, row in mine[mine["stimulus"].isin([ADVERSARIAL_UP, ADVERSARIAL_DOWN])].iterrows():
            intended = 1.0 if row["stimulus"] == ADVERSARIAL_UP else -1.0
            entry = {
                "neuron": neuron,
                "image": row["image"],
                "source": row["source"],
                "intended": "up" if intended > 0 else "down",
                "recorded_change": response[row["image"]] - response[row["source"]],
            }
            entry["recorded_correct"] = bool(np.sign(entry["recorded_change"]) == intended)
            if true_rates is not None:
                entry["true_change"] = true_rates[neuron][row["image"]] - true_rates[neuron][row["source"]]
                entry["true_correct"] = bool(np.sign(entry["true_change"]) == intended)
            adversarial_rows.append(entry)
    scores = pd.DataFrame(rows)
    adversarial = pd.DataFrame(adversarial_rows)
    if not adversarial.empty:
        column = "true_correct" if true_rates is not None else "recorded_correct"
        share = adversarial.groupby("neuron")[column].mean()
        scores["frac_adversarial_correct"] = scores["neuron"].map(share).to_numpy()
    return scores, adversarial
