"""Issue 14: every verdict says how firm it is (synthetic findings with known effects)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from rnnzoo_paper import findings, firmness, stats
from rnnzoo_paper import resamplers as rs
from rnnzoo_paper.findings import Finding
from rnnzoo_paper.resample import TwoGroupTest, resampled_silhouettes, stratified_resamples

ARCHS = ["vanilla", "ugrnn", "gru", "lstm"]


def _matrix(n_seeds: int, arch_effect: float, noise: float = 1.0, seed: int = 0):
    """Distances between networks placed by architecture plus noise (both activations)."""
    rng = np.random.default_rng(seed)
    rows = [(a, f) for a in ARCHS for f in ("tanh", "relu") for _ in range(n_seeds)]
    centre = {a: rng.normal(size=6) for a in ARCHS}
    x = np.array([arch_effect * centre[a] + noise * rng.normal(size=6) for a, _ in rows])
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    ids = [f"{a}-{f}-{i}" for i, (a, f) in enumerate(rows)]
    return xr.DataArray(
        d,
        dims=("network", "network_to"),
        coords={
            "network": ids,
            "network_to": ids,
            "arch": ("network", [a for a, _ in rows]),
            "activation": ("network", [f for _, f in rows]),
        },
    )


def _cluster(d: xr.DataArray) -> Finding:
    (f,) = [
        f
        for f in findings.clustering_findings({"flipflop": {"svcca": d}})
        if f.key.endswith("/arch")
    ]
    return f


def _two_group(vanilla: np.ndarray, gated: np.ndarray) -> Finding:
    """A cdi-like finding: Vanilla (one cell type) has fewer modes than gated (three)."""
    per = len(gated) // 3
    cells = np.array(["vanilla-tanh"] * len(vanilla) + [f"g{i}-tanh" for i in range(3)] * per)
    values = np.concatenate([vanilla, gated])
    in_a = np.arange(len(values)) < len(vanilla)

    def direction(a, b):
        return bool(np.mean(a) < np.mean(b))

    p = stats.exact_two_group_test(vanilla, gated)
    p_opp = stats.exact_two_group_test(gated, vanilla)
    verdict = stats.verdict(direction(vanilla, gated), p, min(len(vanilla), len(gated)), p_opp)
    return Finding(
        "synthetic/two-group",
        "t",
        "claim",
        f"p = {p:.3f}",
        verdict,
        "rule",
        {"p_value": p},
        resampler=rs.two_group_resampler(cells, values, in_a, direction, "gated minus Vanilla"),
    )


def _threshold(values: np.ndarray, threshold: float = 0.1) -> Finding:
    """A sine-like threshold finding: median relative error <= threshold."""
    cells = np.array([ARCHS[i % 4] + "-tanh" for i in range(len(values))])
    med = float(np.median(values))
    return Finding(
        "synthetic/threshold",
        "t",
        "claim",
        f"median {med}",
        stats.threshold_verdict(med <= threshold, len(values)),
        "rule",
        {"median": med},
        resampler=rs.median_below_resampler(cells, values, threshold, "median"),
    )


def _shifted_groups(shift: float, n: int = 5, seed: int = 3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=n), rng.normal(size=3 * n) + shift


def _borderline_shift(n: int = 5, seed: int = 3, target: float = 0.05) -> float:
    """The shift of the gated mean at which the zoo's own p-value is ``target``."""
    lo, hi = 0.0, 5.0
    test = TwoGroupTest(n_permutations=9999)
    for _ in range(14):
        mid = (lo + hi) / 2
        a, b = _shifted_groups(mid, n, seed)
        if test.p(a, b) > target:
            lo = mid
        else:
            hi = mid
    return hi


# ---------------------------------------------------------------------------------------------
# clear effects are firm; borderline ones are not and say which way they lean


def test_a_clear_clustering_effect_is_firm():
    f = _cluster(_matrix(5, arch_effect=3.0, noise=0.5))
    assert f.verdict == stats.AGREES
    firmness.apply_firmness([f])
    fm = f.firmness
    assert f.verdict == stats.AGREES
    assert f.point_verdict == stats.AGREES
    assert fm["firm"]
    assert fm["fraction"] >= firmness.FIRM
    assert fm["n_resamples"] == firmness.N_RESAMPLES
    # the effect (silhouette excess over chance) with a 95% interval excluding 0
    assert 0 < fm["ci_low"] <= fm["effect"] <= fm["ci_high"]
    assert "effect (silhouette excess over chance)" in f.result
    assert "networks_needed" not in fm


def test_a_clear_two_group_effect_is_firm():
    f = _two_group(*_shifted_groups(3.0))
    assert f.verdict == stats.AGREES
    firmness.apply_firmness([f])
    assert f.firmness["firm"]
    assert f.verdict == stats.AGREES
    assert f.firmness["ci_low"] > 0


def test_a_borderline_clustering_effect_is_not_firm_and_leans():
    # arch_effect chosen so that the zoo's own p-value sits near 0.05
    f = None
    for effect in np.linspace(0.1, 0.8, 15):
        f = _cluster(_matrix(5, arch_effect=float(effect), seed=5))
        if 0.02 <= f.numbers["p_value"] <= 0.08:
            break
    assert f is not None
    assert 0.02 <= f.numbers["p_value"] <= 0.08, f.result
    firmness.apply_firmness([f])
    fm = f.firmness
    assert not fm["firm"]
    assert f.verdict == stats.INCONCLUSIVE
    assert fm["lean"] in (stats.AGREES, stats.DIFFERS)
    assert 0.2 <= fm["agrees"] <= 0.9, fm
    assert "leans" in firmness.describe(fm)


def test_a_two_group_effect_at_p_005_is_not_firm_and_leans_agrees():
    a, b = _shifted_groups(_borderline_shift())
    p = stats.exact_two_group_test(a, b)
    assert 0.035 <= p <= 0.065
    f = _two_group(a, b)
    firmness.apply_firmness([f])
    fm = f.firmness
    assert f.verdict == stats.INCONCLUSIVE
    assert not fm["firm"]
    # at p = 0.05 about half the resamples are significant: the lean is agrees, not firm
    assert fm["lean"] == stats.AGREES
    assert 0.3 <= fm["lean_fraction"] <= 0.8, fm
    assert "leans agrees" in firmness.describe(fm)


def test_one_network_per_cell_type_is_never_firm():
    """A cell type of one network has no spread to resample: every resample is the zoo."""
    cells = np.array(["vanilla-tanh"] + ["gru-tanh"] * 11)
    f = Finding(
        "synthetic/solved",
        "t",
        "claim",
        "12 of 12 solved",
        stats.threshold_verdict(True, 12),
        "rule",
        resampler=rs.fraction_resampler(cells, np.ones(12), 0.9, "fraction solved"),
    )
    firmness.apply_firmness([f])
    assert f.firmness["agrees"] == 1.0
    assert not f.firmness["firm"]
    assert f.verdict == stats.INCONCLUSIVE
    assert "one network in a cell type" in firmness.describe(f.firmness)


# ---------------------------------------------------------------------------------------------
# determinism


def test_firmness_is_deterministic_for_a_seed():
    def run(seed):
        fs = [_cluster(_matrix(5, 0.6, seed=2)), _two_group(*_shifted_groups(1.0))]
        firmness.apply_firmness(fs, seed=seed)
        return [f.firmness for f in fs]

    first, second = run(firmness.SEED), run(firmness.SEED)
    assert first == second
    other = run(firmness.SEED + 1)
    assert [f["fraction"] for f in other] != [f["fraction"] for f in first]


def test_stratified_resamples_stay_within_cell_types():
    cells = np.array(["a"] * 3 + ["b"] * 4 + ["c"])
    idx = stratified_resamples(cells, 200, seed=1)
    assert idx.shape == (200, 8)
    assert (cells[idx] == cells[None, :]).all()
    assert (idx[:, 7] == 7).all()  # a cell of one network can only draw itself
    assert np.array_equal(idx, stratified_resamples(cells, 200, seed=1))


# ---------------------------------------------------------------------------------------------
# the resampled statistics are the findings' own


def test_resampled_silhouette_of_the_identity_is_the_findings_silhouette():
    d = _matrix(4, 1.0, seed=1)
    labels = np.asarray(d["arch"].values)
    strata = np.asarray(d["activation"].values)
    present = np.ones(len(labels), dtype=bool)
    present[[0, 9]] = False  # e.g. incomparable graphs
    keep = np.flatnonzero(present)
    t = stats.label_test(np.asarray(d.values)[np.ix_(keep, keep)], labels[keep], strata[keep])
    idx = np.tile(np.arange(len(labels)), (3, 1))
    res = resampled_silhouettes(np.asarray(d.values), present, labels, strata, idx)
    assert res["silhouette"] == pytest.approx(t.silhouette, abs=1e-12)
    assert (res["min_group"] == t.min_group).all()


def test_copies_of_a_network_do_not_count_as_clustering():
    """A resample that draws one network for a whole cell has no distance-0 pairs to count.

    Without leaving pairs of copies out, a cell of copies is a perfect cluster (silhouette
    1 for each copy); with them left out its members have no distinct partner (0).
    """
    d = _matrix(3, 0.0, seed=4)  # no clustering at all
    labels = np.asarray(d["arch"].values)
    strata = np.asarray(d["activation"].values)
    n = len(labels)
    idx = np.arange(n)[None].copy()
    for start in range(0, n, 3):  # every cell (3 networks) drawn as 3 copies of its first
        idx[0, start : start + 3] = start
    res = resampled_silhouettes(np.asarray(d.values), np.ones(n, bool), labels, strata, idx)
    assert res["silhouette"][0] == 0.0
    # on real resamples, the bias-corrected bootstrap is centred on the zoo's silhouette
    data = rs.ClusterData("flipflop", {"svcca": d})
    cells = np.char.add(labels.astype(str), strata.astype(str))
    t = data.test("svcca", "arch", stratified_resamples(cells, 500, seed=0))
    zoo = stats.label_test(np.asarray(d.values), labels, strata)
    assert np.nanmean(t["silhouette"]) == pytest.approx(zoo.silhouette, abs=1e-12)


def test_two_group_test_matches_the_findings_exact_test():
    rng = np.random.default_rng(0)
    test = TwoGroupTest()
    for k, m in ((3, 4), (5, 5), (2, 6)):
        a, b = rng.normal(size=k), rng.normal(size=m) + 0.5
        assert test.p(a, b) == pytest.approx(stats.exact_two_group_test(a, b), abs=1e-12)


# ---------------------------------------------------------------------------------------------
# networks needed to decide


def test_networks_needed_decreases_as_the_effect_grows_and_is_actionable():
    needed = []
    base = _borderline_shift(target=0.3)
    for shift in np.linspace(base, base * 2.2, 5):
        f = _two_group(*_shifted_groups(float(shift)))
        firmness.apply_firmness([f])
        if f.firmness["firm"]:
            needed.append(f.firmness["n_per_cell"])
            continue
        n = f.firmness["networks_needed"]
        assert n is not None
        assert float(n).is_integer()
        assert n > f.firmness["n_per_cell"]
        assert f"~{int(n)} networks per cell type would decide it" in firmness.describe(f.firmness)
        needed.append(n)
    assert needed == sorted(needed, reverse=True), needed
    assert needed[0] > needed[-1]


def test_a_zoo_of_the_estimated_size_decides_the_finding():
    """Draw a zoo with the estimated networks per cell type from the same population."""
    shift = _borderline_shift(target=0.15)
    f = _two_group(*_shifted_groups(shift))
    firmness.apply_firmness([f])
    need = int(f.firmness["networks_needed"])
    assert 5 < need < 200
    # the population: the measured effect and spread (what the estimate assumes)
    a0, b0 = _shifted_groups(shift)
    rng = np.random.default_rng(11)
    firm = 0
    for _ in range(5):
        a = rng.normal(a0.mean(), a0.std(ddof=1), size=need)
        b = rng.normal(b0.mean(), b0.std(ddof=1), size=3 * need)
        g = _two_group(a, b)
        firmness.apply_firmness([g], n_resamples=300)
        firm += g.firmness["firm"] and g.verdict == stats.AGREES
    assert firm >= 4  # the estimate aims at 95% of zoos firm; 5 draws


def test_networks_needed_formula():
    effects = np.random.default_rng(0).normal(0.2, 0.1, size=1000)
    se = np.std(effects, ddof=1)
    n_test, _ = firmness.networks_needed(5, 0.2, effects, firmness.TEST, 0.0)
    n_thr, _ = firmness.networks_needed(5, 0.2, effects, firmness.THRESHOLD, 0.0)
    # a test: 1.645 (p <= 0.05) + 1.645 (firm) + 1.645 (95% of zoos) standard errors
    assert n_test == math.ceil(5 * (3 * 1.6448536269514722 * se / 0.2) ** 2)
    assert n_thr == math.ceil(5 * (2 * 1.6448536269514722 * se / 0.2) ** 2)
    assert firmness.networks_needed(5, 0.0, effects, firmness.TEST, 0.0)[0] == math.inf


# ---------------------------------------------------------------------------------------------
# issue 14 §2 at tiny scale: zoos that differ only in rounding never give opposite firm verdicts


def _zoo_findings(values_a, values_b, d, thresholds) -> list[Finding]:
    return [
        _two_group(values_a, values_b),
        _cluster(d),
        _threshold(thresholds),
    ]


def test_float32_noise_flips_a_borderline_verdict_but_never_a_firm_one():
    """Zoo B = zoo A with float32-level noise on every per-network quantity.

    The threshold finding sits exactly on its line (median relative error 0.1 over 12
    networks), so rounding alone reverses the zoos' own verdicts; firmness never does.
    """
    rng = np.random.default_rng(0)
    # 5 below, two exactly at, 5 above the threshold: the median is exactly 0.1
    thr = np.concatenate([rng.uniform(0.02, 0.09, 5), [0.1, 0.1], rng.uniform(0.11, 0.2, 5)])
    a, b = _shifted_groups(2.0)
    d = _matrix(3, 1.5, seed=1)
    eps = np.finfo(np.float32).eps
    pairs = []
    for sign in (1.0, -1.0):
        noisy = thr * (1 + sign * eps)
        zoo_a = _zoo_findings(a, b, d, thr * (1 - sign * eps))
        zoo_b = _zoo_findings(
            a * (1 + eps * rng.normal(size=a.shape)),
            b * (1 + eps * rng.normal(size=b.shape)),
            d.copy(data=d.values * (1 + eps * rng.normal(size=d.shape)).clip(1 - 4 * eps)),
            noisy,
        )
        pairs.append((zoo_a, zoo_b))
    flipped = 0
    for zoo_a, zoo_b in pairs:
        flipped += {zoo_a[2].verdict, zoo_b[2].verdict} == {stats.AGREES, stats.DIFFERS}
        firmness.apply_firmness(zoo_a)
        firmness.apply_firmness(zoo_b)
        for fa, fb in zip(zoo_a, zoo_b, strict=True):
            assert {fa.verdict, fb.verdict} != {stats.AGREES, stats.DIFFERS}, fa.key
    assert flipped == 2  # the zoos' own verdicts were opposite: the rule is what holds


def test_zoos_whose_rounding_diverged_never_give_opposite_firm_verdicts():
    """Rounding grows during training into different networks: two independent draws.

    Over a sweep of effect sizes (null to clear) for a test, a clustering and a threshold
    finding, the zoos' own verdicts are opposite in some pairs; the firm verdicts never are.
    """
    opposite_point = 0
    for k, shift in enumerate(np.linspace(0.0, 2.0, 6)):
        zoos = []
        for draw in (0, 1):
            rng = np.random.default_rng(100 * k + draw)
            a = rng.normal(size=10)
            b = rng.normal(size=30) + shift
            d = _matrix(3, float(shift) / 2, seed=100 * k + draw)
            thr = rng.normal(0.1 + 0.05 * (shift - 1), 0.05, size=12)
            zoos.append(_zoo_findings(a, b, d, thr))
        for fa, fb in zip(*zoos, strict=True):
            opposite_point += {fa.verdict, fb.verdict} == {stats.AGREES, stats.DIFFERS}
        for zoo in zoos:
            firmness.apply_firmness(zoo, n_resamples=500)
        for fa, fb in zip(*zoos, strict=True):
            assert {fa.verdict, fb.verdict} != {stats.AGREES, stats.DIFFERS}, (fa.key, shift)
    assert opposite_point >= 1


# ---------------------------------------------------------------------------------------------
# the report


def test_the_report_shows_firmness_beside_each_verdict_and_the_rule_under_the_table():
    from rnnzoo_paper import report

    firm_f = _two_group(*_shifted_groups(3.0))
    open_f = _two_group(*_shifted_groups(_borderline_shift()))
    open_f.key = "synthetic/borderline"
    firmness.apply_firmness([firm_f, open_f])
    table = "\n".join(report._findings_table([firm_f, open_f]))
    assert f"✅ agrees (firm: {firm_f.firmness['fraction']:.0%} of 1000 resamples)" in table
    assert "❔ inconclusive (leans agrees" in table
    assert f"*Rule:* {firmness.RULE}." in table
    assert "effect (gated minus Vanilla) +" in table  # the effect with its interval
    assert "[95% CI " in table
    undecided = "\n".join(report._undecided([firm_f, open_f]))
    assert "`synthetic/borderline` | agrees |" in undecided
    need = int(open_f.firmness["networks_needed"])
    assert f"~{need} (this zoo: 5)" in undecided
    assert "synthetic/two-group" not in undecided  # firm: nothing to decide
    summary = "\n".join(report._firmness_summary([firm_f, open_f]))
    assert "1 of those 2 decided verdicts are not firm" in summary
    # findings.json: the zoo's own verdict, the firmness, no resampler
    d = open_f.to_dict()
    assert d["point_verdict"] == stats.AGREES
    assert d["verdict"] == stats.INCONCLUSIVE
    assert d["firmness"]["lean"] == stats.AGREES
    assert "resampler" not in d
    assert all(math.isfinite(v) for v in d["numbers"].values())
