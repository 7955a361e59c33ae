"""How firm each verdict is: the verdict recomputed over bootstrap resamples of the networks.

A verdict decided on one zoo of few networks per cell type can be reversed by another zoo of
the same specification (another CPU's float32 rounding trains slightly different networks).
So every finding carries a :class:`Resampler`: the networks that produced it, with their
cell types, and a function that recomputes the finding's statistic and verdict on a
resample of them from precomputed per-network quantities or distance matrices (never by
rerunning an analysis). :func:`apply_firmness` then

1. draws ``N_RESAMPLES`` stratified bootstrap resamples (networks drawn with replacement
   within each cell type, seeded by the finding's key, so the result is deterministic);
2. counts the resamples that give the zoo's own verdict: a verdict stays *agrees* or
   *differs* only when at least ``FIRM`` of them do (it is *firm*); otherwise it becomes
   *inconclusive at this zoo size* and the finding says which way it leans (the more
   frequent of agrees / differs among the resamples) and how often;
3. gives the finding's effect size with a 95% bootstrap percentile interval;
4. for a finding that is not firm, estimates the networks per cell type at which 95% of
   zoos would give it a firm verdict (:func:`networks_needed`), from its effect and the
   effect's bootstrap standard error ``se``, which shrinks as ``1/sqrt(n)``: a zoo is firm
   when its effect lies ``z_test + 1.645`` standard errors beyond the rule's boundary
   (``z_test = 1.645`` for a one-sided test at p <= 0.05, 0 for a threshold compared
   directly), and 95% of zoos lie within 1.645 standard errors of the true effect, so
   ``n' = n * ((z_test + 2 * 1.645) * se / |effect - boundary|)^2``. For the Kruskal-Wallis
   test, a power calculation with the noncentral chi-square whose noncentrality ``H - df``
   grows in proportion to ``n``, at the level a firm verdict needs (p <= 0.0005). Where the
   share of resamples on the lean side, extrapolated the same way (:func:`fraction_needed`),
   asks for more (the verdict also has a direction check or a second test), the larger.

A cell type with a single network has no spread to resample: such a verdict is never firm.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import stats

#: bootstrap resamples per finding: at the 95% line the Monte Carlo standard error of the
#: firmness is sqrt(0.95 * 0.05 / 1000) = 0.7 percentage points, small against the distance
#: of most findings from the line, and all 41 demo findings take a few seconds of one core
N_RESAMPLES = 1000
#: fraction of resamples that must give the zoo's verdict for it to count as firm
FIRM = 0.95
#: the base seed; each finding's resamples are seeded by it and its key (or its task)
SEED = 14
#: one-sided normal quantiles used by the networks-needed estimate
Z_TEST = 1.6448536269514722  # a test at p <= 0.05 (stats.ALPHA), one-sided
Z_FIRM = 1.6448536269514722  # 95% of zoos on the same side (FIRM)
#: the largest estimate printed as a number (beyond it: "more than")
MAX_NEEDED = 10_000

TEST = "test"
THRESHOLD = "threshold"

RULE = (
    f"firmness: the verdict recomputed on {N_RESAMPLES} stratified bootstrap resamples of the "
    "networks (drawn with replacement within each cell type, seeded), from the stored "
    "per-network quantities and distance sub-matrices (clustering: the resampled silhouette, "
    "pairs of copies left out, against the zoo's own permutation null); agrees or differs "
    f"only when at least {FIRM:.0%} of the resamples give it, otherwise inconclusive at this "
    "zoo size, leaning to the more frequent of agrees / differs; effects with 95% bootstrap "
    "percentile intervals; for a verdict that is not firm, the networks per cell type at "
    "which 95% of zoos would decide it firmly, with se the bootstrap standard error of the "
    "effect at n networks per cell type, shrinking as 1/sqrt(n): n x (4.93 x se / "
    "|effect|)^2 for a test at p <= 0.05 (1.645 for the test, 1.645 for firmness, 1.645 for "
    "95% of zoos), n x (3.29 x se / |effect - threshold|)^2 for a threshold "
    "(Kruskal-Wallis: its power at p <= 0.0005 with noncentrality H - df growing with n), or "
    "the share of resamples on the lean side extrapolated the same way where that is larger"
)


@dataclass
class Resampler:
    """What :func:`apply_firmness` needs to recompute one finding on resampled networks.

    Attributes
    ----------
    cells : (n,) array of str
        Cell type (e.g. ``"gru-tanh"``) of each network the finding is computed from.
    run : callable
        ``run(idx)`` with ``idx`` the ``(B, n)`` resampled indices into those networks;
        returns ``(verdicts, effects)``: B verdict strings and B effect values (NaN where
        a resample has none).
    effect : float
        The effect on the zoo itself (``run`` on the identity resample would give it).
    effect_name : str
        What the effect is, in words (with its sign convention).
    kind : str
        ``TEST`` (significance at p <= 0.05) or ``THRESHOLD`` (a value against a threshold).
    boundary : float
        The value of the effect where the verdict changes (0 for a test).
    seed_key : str
        Findings with the same ``seed_key`` and cells get the same resamples (the clustering
        tests of one task, so that topology is compared with geometry on the same draws).
    needed : callable, optional
        ``needed(n_cell, effects) -> (value, method)`` replacing the default estimate.
    """

    cells: np.ndarray
    run: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    effect: float
    effect_name: str
    kind: str = TEST
    boundary: float = 0.0
    seed_key: str = ""
    needed: Callable[[float, np.ndarray], tuple[float, str]] | None = None


def cells_of(arch, activation) -> np.ndarray:
    """Cell-type labels ``arch-activation`` of networks."""
    return np.array(
        [
            f"{a}-{b}"
            for a, b in zip(np.ravel(arch).tolist(), np.ravel(activation).tolist(), strict=True)
        ],
        dtype=object,
    )


def seed_of(key: str, seed: int = SEED) -> int:
    """A seed from a finding's key (stable across runs and Python versions)."""
    return (zlib.crc32(key.encode()) ^ seed) & 0x7FFFFFFF


def networks_needed(
    n_cell: float, effect: float, effects: np.ndarray, kind: str, boundary: float
) -> tuple[float, str]:
    """Networks per cell type at which the effect would decide the rule (module docstring).

    Returns ``(n, method)``: ``n`` rounded up, at least ``n_cell``; ``inf`` when the effect
    sits on the boundary or its spread cannot be measured.
    """
    e = np.asarray(effects, dtype=float)
    e = e[np.isfinite(e)]
    z = 2 * Z_FIRM + (Z_TEST if kind == TEST else 0.0)
    method = (
        "bootstrap standard error extrapolated as 1/sqrt(n): "
        f"n x ({z:.2f} x se / |effect - {boundary:g}|)^2"
    )
    if len(e) < 2 or not math.isfinite(effect):
        return math.inf, method
    se = float(np.std(e, ddof=1))
    delta = abs(effect - boundary)
    if delta <= 1e-12 or se <= 0:
        return (math.inf if delta <= 1e-12 else float(n_cell)), method
    return float(max(math.ceil(n_cell * (z * se / delta) ** 2), n_cell)), method


def fraction_needed(n_cell: float, lean_fraction: float, kind: str) -> tuple[float, str]:
    """Networks per cell type from the fraction of resamples on the lean side.

    If the verdict's statistic is about normal, a fraction ``f`` of resamples beyond the
    rule's line gives the effect's distance from the boundary in standard errors as
    ``Phi^-1(f) (+ 1.645 for a test)``; 95% of zoos firm need ``(+ 1.645) + 2 x 1.645`` of
    them, so ``n' = n x ((2 x 1.645 (+ 1.645)) / (Phi^-1(f) (+ 1.645)))^2``. Used where it
    exceeds the effect's estimate (the verdict has conditions beside its effect, e.g. a
    direction check, that the resamples reverse).
    """
    from scipy.stats import norm

    offset = Z_TEST if kind == TEST else 0.0
    method = (
        "fraction of resamples on the lean side extrapolated as 1/sqrt(n): n x ("
        f"{2 * Z_FIRM + offset:.2f} / (Phi^-1(fraction) + {offset:.2f}))^2"
    )
    z = float(norm.ppf(min(max(lean_fraction, 1e-6), 1 - 1e-6))) + offset
    if z <= 0:
        return math.inf, method
    target = 2 * Z_FIRM + offset
    return float(max(math.ceil(n_cell * (target / z) ** 2), n_cell + 1)), method


def kruskal_needed(h: float, df: int, n_cell: float) -> tuple[float, str]:
    """Networks per cell type at which 95% of zoos give a Kruskal-Wallis finding firmly.

    Power calculation from the measured statistic: under the alternative ``H`` is
    approximately noncentral chi-square with ``df`` degrees of freedom and noncentrality
    ``lambda = H - df`` at this zoo's size, growing in proportion to the networks per group.
    A zoo is firm when its own p-value is about ``Phi(-(1.645 + 1.645)) = 0.0005`` or less
    (95% of its resamples then reach p <= 0.05), so the power is taken at that level.
    """
    from scipy.stats import chi2, ncx2, norm

    method = (
        "power (95%) of the Kruskal-Wallis test at p <= 0.0005, noncentrality (H - df) "
        "scaled with n"
    )
    lam = h - df
    if not math.isfinite(lam) or lam <= 0:
        return math.inf, method
    crit = chi2.ppf(1 - float(norm.sf(Z_TEST + Z_FIRM)), df)
    n = float(n_cell)
    while n <= MAX_NEEDED:
        if ncx2.sf(crit, df, lam * n / n_cell) >= FIRM:
            return float(max(math.ceil(n), n_cell)), method
        n = max(n + 1, math.ceil(n * 1.05))
    return math.inf, method


def _lean(verdicts: np.ndarray) -> tuple[str, float]:
    agree = float(np.mean(verdicts == stats.AGREES))
    differ = float(np.mean(verdicts == stats.DIFFERS))
    if agree == differ == 0:
        return "", 0.0
    return (stats.AGREES, agree) if agree >= differ else (stats.DIFFERS, differ)


def assess(finding, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> dict:
    """Firmness of one finding (it must carry a :class:`Resampler`); see the module docstring.

    Returns the dict stored as ``finding.firmness``: ``fraction`` (resamples giving the zoo's
    verdict), ``agrees`` / ``differs`` (fractions), ``firm``, ``lean`` and ``lean_fraction``,
    ``effect``, ``effect_name``, ``ci_low``, ``ci_high``, ``n_per_cell`` (networks per cell
    type), ``networks_needed`` and ``needed_method`` (not firm only), ``n_resamples``.
    """
    from .resample import stratified_resamples

    r: Resampler = finding.resampler
    cells = np.asarray(r.cells, dtype=object)
    _, sizes = np.unique(cells.astype(str), return_counts=True)
    n_cell = float(np.median(sizes)) if len(sizes) else 0.0
    idx = stratified_resamples(cells, n_resamples, seed_of(r.seed_key or finding.key, seed))
    verdicts, effects = r.run(idx)
    verdicts = np.asarray(verdicts, dtype=object)
    effects = np.asarray(effects, dtype=float)
    point = finding.verdict
    fraction = float(np.mean(verdicts == point))
    spread = len(sizes) > 0 and sizes.min() >= 2
    firm = point in (stats.AGREES, stats.DIFFERS) and fraction >= FIRM and spread
    lean, lean_fraction = _lean(verdicts)
    fin = effects[np.isfinite(effects)]
    out = {
        "n_resamples": n_resamples,
        "fraction": fraction,
        "agrees": float(np.mean(verdicts == stats.AGREES)),
        "differs": float(np.mean(verdicts == stats.DIFFERS)),
        "firm": bool(firm),
        "lean": "" if firm else lean,
        "lean_fraction": 0.0 if firm else lean_fraction,
        "effect_name": r.effect_name,
        "effect": r.effect if math.isfinite(r.effect) else None,
        "ci_low": float(np.percentile(fin, 2.5)) if len(fin) else None,
        "ci_high": float(np.percentile(fin, 97.5)) if len(fin) else None,
        "n_per_cell": n_cell,
        "min_cell": int(sizes.min()) if len(sizes) else 0,
    }
    if not firm:
        if r.needed is not None:
            need, method = r.needed(n_cell, effects)
        else:
            need, method = networks_needed(n_cell, r.effect, effects, r.kind, r.boundary)
        if lean and math.isfinite(need):
            # the verdict may have conditions beside its effect (a direction check, a second
            # test) that the resamples reverse more often than the effect: take the larger
            # of the two estimates
            by_fraction, how = fraction_needed(n_cell, lean_fraction, r.kind)
            if math.isfinite(by_fraction) and by_fraction > need:
                need, method = by_fraction, how
        if not spread:
            need, method = math.inf, "one network in a cell type: no spread to extrapolate"
        out["networks_needed"] = need if math.isfinite(need) and need <= MAX_NEEDED else None
        out["needed_method"] = method
    return out


def describe(firmness: dict) -> str:
    """The firmness in words, for the verdict column (e.g. ``firm: 99% of 400``)."""
    b = firmness["n_resamples"]
    if firmness["firm"]:
        return f"firm: {firmness['fraction']:.0%} of {b} resamples"
    parts = []
    if firmness["min_cell"] < 2:
        parts.append("one network in a cell type")
    if firmness["lean"]:
        parts.append(f"leans {firmness['lean']} ({firmness['lean_fraction']:.0%} of {b})")
    else:
        parts.append(f"no lean (neither agrees nor differs in {b} resamples)")
    need = firmness.get("networks_needed")
    if need is not None:
        parts.append(f"~{int(need)} networks per cell type would decide it")
    elif "networks_needed" in firmness:
        parts.append(f"more than {MAX_NEEDED:,} networks per cell type at this effect")
    return "; ".join(parts)


def effect_text(firmness: dict) -> str:
    """``effect: <name> +0.123 [95% CI +0.050, +0.190]`` (empty when not computable)."""
    e, lo, hi = firmness.get("effect"), firmness.get("ci_low"), firmness.get("ci_high")
    if e is None or lo is None or hi is None:
        return ""
    return f"effect ({firmness['effect_name']}) {e:+.3g} [95% CI {lo:+.3g}, {hi:+.3g}]"


def apply_firmness(findings: list, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> float:
    """Decide every finding with its firmness (module docstring); returns the seconds taken.

    Each finding with a resampler gets ``point_verdict`` (the zoo's own verdict),
    ``firmness`` (from :func:`assess`) and, when that verdict is not firm, the verdict
    *inconclusive at this zoo size*; its effect and interval are appended to ``result``
    and the firmness numbers added to ``numbers``.
    """
    t0 = time.perf_counter()
    for f in findings:
        f.point_verdict = f.verdict
        if getattr(f, "resampler", None) is None:
            continue
        firm = assess(f, n_resamples, seed)
        f.firmness = firm
        if not firm["firm"]:
            f.verdict = stats.INCONCLUSIVE
        text = effect_text(firm)
        if text:
            f.result += f"; {text}"
        f.numbers["firmness"] = firm["fraction"]
        for name in ("effect", "ci_low", "ci_high", "networks_needed"):
            value = firm.get(name)
            if value is not None and math.isfinite(value):
                f.numbers[f"effect_{name}" if name.startswith("ci") else name] = float(value)
    return time.perf_counter() - t0
