"""Mahalanobis score, thresholds and metrics against hand-computed cases."""

import numpy as np
import pytest

from lstmkit.train import anomaly_metrics as am


def test_mahalanobis_equals_a_hand_computed_correlated_case():
    e = np.array([[1.0, 2.0], [3.0, 4.0], [2.0, 2.0], [2.0, 4.0]])
    # mean (2, 3); Sigma (population) = [[0.5, 0.5], [0.5, 1]]; Sigma^-1 = [[4, -2], [-2, 2]]
    g = am.GaussianErrors(ridge=0.0).fit(e)
    np.testing.assert_allclose(g.mean_, [2.0, 3.0])
    np.testing.assert_allclose(g.cov_, [[0.5, 0.5], [0.5, 1.0]])
    got = g.score(np.array([[3.0, 3.0], [2.0, 4.0], [3.0, 4.0], [2.0, 3.0]]))
    np.testing.assert_allclose(got, [4.0, 2.0, 2.0, 0.0], atol=1e-12)
    back = am.GaussianErrors().load_state_dict(g.state_dict())
    np.testing.assert_allclose(back.score(e), g.score(e))


def test_gaussian_refuses_too_few_errors_and_wrong_width():
    with pytest.raises(ValueError, match="at least 2 finite error vectors"):
        am.GaussianErrors().fit(np.array([[1.0, np.nan], [1.0, 2.0]]))
    g = am.GaussianErrors().fit(np.random.default_rng(0).normal(size=(10, 3)))
    with pytest.raises(ValueError, match="expected 3 error dimensions, got 2"):
        g.score(np.zeros((1, 2)))


def test_range_precision_recall_hand_cases():
    y = np.array([0, 1, 1, 1, 1, 0, 0, 0, 1, 1])  # true ranges [1, 5), [8, 10)
    p = np.array([0, 0, 1, 0, 0, 0, 1, 1, 1, 0])  # predicted [2, 3), [6, 9)
    # recall: R1 overlaps 1 of 4 -> 0.25; R2 overlaps 1 of 2 -> 0.5; mean 0.375
    # precision: P1 fully inside R1 -> 1; P2 overlaps 1 of 3 -> 1/3; mean 2/3
    prec, rec = am.range_precision_recall(y, p)
    assert prec == pytest.approx(2 / 3) and rec == pytest.approx(0.375)
    # alpha = 1: recall is pure existence (both true ranges touched)
    assert am.range_precision_recall(y, p, alpha=1.0)[1] == pytest.approx(1.0)
    # front bias: R1 (weights 4, 3, 2, 1) hit at its 2nd point is worth 3/10, R2 (2, 1) at its
    # 1st 2/3; back bias: R1 (1, 2, 3, 4) -> 2/10, R2 (1, 2) -> 1/3
    assert am.range_precision_recall(y, p, bias="front")[1] == pytest.approx((0.3 + 2 / 3) / 2)
    assert am.range_precision_recall(y, p, bias="back")[1] == pytest.approx((2 / 10 + 1 / 3) / 2)


def test_range_recall_reciprocal_cardinality_divides_by_the_fragments():
    y = np.array([1, 1, 1, 1, 0])
    p = np.array([1, 0, 1, 0, 0])  # two predictions inside one true range
    assert am.range_precision_recall(y, p)[1] == pytest.approx(0.5)
    assert am.range_precision_recall(y, p, cardinality="reciprocal")[1] == pytest.approx(0.25)
    assert am.range_precision_recall(y, np.zeros(5)) == (0.0, 0.0)


def test_point_adjusted_f1_is_inflated_by_one_hit():
    y = np.array([0] * 10 + [1] * 10)
    p = np.zeros(20)
    p[15] = 1
    assert am.f1_at(p, y) == pytest.approx(2 / 11)  # precision 1, recall 0.1
    assert am.point_adjusted_f1(y, p) == pytest.approx(1.0)


def test_ucr_protocol_accepts_the_top_score_within_100_points_only():
    y = np.zeros(1000, dtype=int)
    y[500:510] = 1
    s = np.zeros(1000)
    s[605] = 1.0  # 96 after the range's last point
    assert am.ucr_hit(s, y) is True
    s[605], s[200] = 0.0, 1.0
    assert am.ucr_hit(s, y) is False
    y[800] = 1  # two ranges: the protocol does not apply
    assert am.ucr_hit(s, y) is None


def test_threshold_rules():
    normal = np.arange(101.0)
    assert am.percentile_threshold(normal, 99) == pytest.approx(99.0)
    scores = np.array([0.1, 0.2, 0.9, 0.3, 0.8, 0.85])
    labels = np.array([0, 0, 1, 0, 1, 0])
    # beta -> 0 favours precision: 0.9 flags only a true anomaly
    assert am.fbeta_threshold(scores, labels, beta=0.1) == pytest.approx(0.9)
    # beta = 10 favours recall: 0.8 catches both anomalies
    assert am.fbeta_threshold(scores, labels, beta=10.0) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="at least one anomalous point"):
        am.fbeta_threshold(scores, np.zeros(6))


def test_dynamic_threshold_flags_a_burst_in_noise():
    rng = np.random.default_rng(0)
    s = np.abs(rng.normal(size=600))
    s[300:310] += 8.0
    thr, smooth = am.dynamic_threshold(s, window=300)
    flagged = np.flatnonzero(smooth >= thr)
    assert flagged.size and flagged.min() >= 300 and flagged.max() < 340


def test_all_metrics_of_a_perfect_score():
    y = np.array([0, 0, 1, 1, 0, 0])
    m = am.all_metrics(y * 2.0, y, pred=y)
    assert m["roc_auc"] == m["pr_auc"] == m["best_f1"] == m["f1"] == m["range_f1"] == 1.0
    assert m["ucr_hit"] is True and m["flagged"] == 2
