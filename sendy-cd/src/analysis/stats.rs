//! The statistics behind the judges: the Mann-Whitney U test, the Hodges-Lehmann shift and its
//! confidence interval (the fixed-window judge, as Netflix's Kayenta), and an anytime-valid
//! confidence sequence for a mean difference (the sequential judge).
//!
//! Normal quantiles come from `statrs`; everything here is deterministic and allocation-light (the
//! Hodges-Lehmann interval sorts the `m × n` pairwise differences: a few hundred points per side at
//! most in a canary step).

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

fn standard_normal() -> Normal {
    // Mean 0 and standard deviation 1 are valid parameters: this never fails.
    Normal::standard()
}

/// The `p` quantile of the standard normal distribution.
pub fn normal_quantile(p: f64) -> f64 {
    standard_normal().inverse_cdf(p)
}

/// The standard normal distribution function at `z`.
pub fn normal_cdf(z: f64) -> f64 {
    standard_normal().cdf(z)
}

/// The Mann-Whitney U test of `canary` against `baseline`: are values of one larger than the other's
/// more often than chance allows?
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// U of the canary: how many (canary, baseline) pairs the canary wins, ties counting one half.
    pub u: f64,
    /// U standardised (normal approximation, ties corrected, continuity corrected); positive when
    /// the canary is larger.
    pub z: f64,
    /// The two-sided p-value.
    pub p_value: f64,
}

/// The Mann-Whitney U test; `None` when either side is empty.
pub fn mann_whitney(canary: &[f64], baseline: &[f64]) -> Option<MannWhitney> {
    let (m, n) = (canary.len(), baseline.len());
    if m == 0 || n == 0 {
        return None;
    }
    // Rank the pooled sample, ties sharing the mean of their ranks.
    let mut pooled: Vec<(f64, bool)> =
        canary.iter().map(|v| (*v, true)).chain(baseline.iter().map(|v| (*v, false))).collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut tie_term, mut i) = (0.0, 0.0, 0);
    while i < pooled.len() {
        let mut j = i;
        while j + 1 < pooled.len() && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        let ties = (j - i + 1) as f64;
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += rank * pooled[i..=j].iter().filter(|p| p.1).count() as f64;
        tie_term += ties * ties * ties - ties;
        i = j + 1;
    }
    let (mf, nf) = (m as f64, n as f64);
    let u = rank_sum - mf * (mf + 1.0) / 2.0;
    let mean = mf * nf / 2.0;
    let total = mf + nf;
    let variance = mf * nf / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)).max(1.0));
    if variance <= 0.0 {
        // Every value equal: no evidence either way.
        return Some(MannWhitney { u, z: 0.0, p_value: 1.0 });
    }
    let diff = u - mean;
    let corrected = if diff > 0.5 {
        diff - 0.5
    } else if diff < -0.5 {
        diff + 0.5
    } else {
        0.0
    };
    let z = corrected / variance.sqrt();
    Some(MannWhitney { u, z, p_value: (2.0 * (1.0 - normal_cdf(z.abs()))).min(1.0) })
}

/// The Hodges-Lehmann estimate of the shift `canary - baseline` (the median of every pairwise
/// difference) and its distribution-free confidence interval at `confidence` (the order statistics
/// of the differences that the Mann-Whitney test does not reject; critical value by the normal
/// approximation). `None` when either side is empty. It sorts all `m × n` differences: time and
/// memory grow with the product of the sides (an [`Analysis`](super::Analysis) window is at most
/// [`MAX_INTERVALS`](super::MAX_INTERVALS) a side).
pub fn hodges_lehmann(canary: &[f64], baseline: &[f64], confidence: f64) -> Option<(f64, f64, f64)> {
    let (m, n) = (canary.len(), baseline.len());
    if m == 0 || n == 0 {
        return None;
    }
    let mut diffs: Vec<f64> = canary.iter().flat_map(|c| baseline.iter().map(move |b| c - b)).collect();
    diffs.sort_by(f64::total_cmp);
    let len = diffs.len();
    let estimate = if len % 2 == 1 { diffs[len / 2] } else { (diffs[len / 2 - 1] + diffs[len / 2]) / 2.0 };
    let (mf, nf) = (m as f64, n as f64);
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let k = (mf * nf / 2.0 - z * (mf * nf * (mf + nf + 1.0) / 12.0).sqrt()).floor();
    let k = if k < 0.0 { 0 } else { (k as usize).min((len - 1) / 2) };
    Some((estimate, diffs[k], diffs[len - 1 - k]))
}

/// A running confidence sequence for the mean of paired differences (canary minus baseline, one
/// pair per interval): an interval that holds the true mean at every look at once, with
/// probability at least `1 - alpha`, so a judge may stop the moment it excludes a value (Robbins'
/// normal mixture; Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric,
/// nonasymptotic confidence sequences", 2021). The variance is estimated from the pairs, with
/// `variance_floor` as its least value, so the sequence is asymptotically valid.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfidenceSequence {
    n: u32,
    mean: f64,
    m2: f64,
}

impl ConfidenceSequence {
    /// Adds one paired difference (Welford's update).
    pub fn push(&mut self, difference: f64) {
        self.n += 1;
        let delta = difference - self.mean;
        self.mean += delta / f64::from(self.n);
        self.m2 += delta * (difference - self.mean);
    }

    /// How many pairs were added.
    pub fn len(&self) -> u32 {
        self.n
    }

    /// Whether no pair was added.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The mean difference so far.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The sample variance of the differences (0 below two pairs).
    pub fn variance(&self) -> f64 {
        if self.n < 2 { 0.0 } else { self.m2 / f64::from(self.n - 1) }
    }

    /// The interval `(low, high)` at level `1 - alpha`, its mixture tuned to detect a mean
    /// difference of about `scale` (the tolerance being tested); `None` before two pairs.
    pub fn interval(&self, alpha: f64, scale: f64, variance_floor: f64) -> Option<(f64, f64)> {
        if self.n < 2 || !(alpha > 0.0 && alpha < 1.0) {
            return None;
        }
        let tau2 = (scale * scale).max(f64::MIN_POSITIVE);
        // A variance of exactly 0 (identical differences) is held at a trillionth of the scale, so
        // the interval stays finite and tiny rather than overflowing.
        let v = self.variance().max(variance_floor).max(tau2 * 1e-12) / f64::from(self.n);
        let radius = (v * (v + tau2) / tau2 * (2.0 * (1.0 / alpha).ln() + ((v + tau2) / v).ln())).sqrt();
        Some((self.mean - radius, self.mean + radius))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Figures checked against SciPy 1.x: `scipy.stats.mannwhitneyu(x, y, alternative="two-sided",
    /// method="asymptotic", use_continuity=True)` gives U = 58, p = 0.13292; the median of the
    /// pairwise differences is 0.56.
    #[test]
    #[allow(clippy::approx_constant)] // 3.14 is a data point, not pi
    fn mann_whitney_matches_scipy() {
        let x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
        let y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
        let mw = mann_whitney(&x, &y).unwrap();
        assert_eq!(mw.u, 58.0);
        assert!((mw.p_value - 0.1329).abs() < 0.002, "{mw:?}");
        assert!(mw.z > 0.0);
        let (estimate, lo, hi) = hodges_lehmann(&x, &y, 0.95).unwrap();
        assert!((estimate - 0.56).abs() < 1e-12, "{estimate}");
        assert!(lo <= estimate && estimate <= hi);
        assert!(lo < 0.0 && hi > 0.0, "not significant at 95 %: the interval holds 0 ({lo}, {hi})");
    }

    #[test]
    fn a_clear_shift_is_found_and_measured() {
        let baseline: Vec<f64> = (0..20).map(|i| 100.0 + f64::from(i % 5)).collect();
        let canary: Vec<f64> = baseline.iter().map(|v| v + 50.0).collect();
        let mw = mann_whitney(&canary, &baseline).unwrap();
        assert!(mw.p_value < 1e-6, "{mw:?}");
        let (estimate, lo, hi) = hodges_lehmann(&canary, &baseline, 0.95).unwrap();
        assert_eq!(estimate, 50.0);
        assert!(lo > 45.0 && hi < 55.0, "({lo}, {hi})");
        let reversed = mann_whitney(&baseline, &canary).unwrap();
        assert!(reversed.z < 0.0);
    }

    #[test]
    fn equal_or_empty_samples_give_no_evidence() {
        assert_eq!(mann_whitney(&[], &[1.0]), None);
        assert_eq!(hodges_lehmann(&[1.0], &[], 0.95), None);
        let same = mann_whitney(&[3.0, 3.0], &[3.0, 3.0, 3.0]).unwrap();
        assert_eq!((same.z, same.p_value), (0.0, 1.0));
    }

    #[test]
    fn the_confidence_sequence_narrows_and_covers() {
        let mut cs = ConfidenceSequence::default();
        assert_eq!(cs.interval(0.01, 1.0, 0.0), None);
        let mut rng = fastrand::Rng::with_seed(3);
        let mut widths = Vec::new();
        for _ in 0..400 {
            // Uniform on [-1, 1] around a true mean of 0.25.
            cs.push(0.25 + 2.0 * rng.f64() - 1.0);
            if let Some((lo, hi)) = cs.interval(0.01, 0.2, 0.0) {
                assert!(lo < 0.25 && 0.25 < hi, "n = {}: ({lo}, {hi})", cs.len());
                widths.push(hi - lo);
            }
        }
        assert!(
            widths.last().unwrap() < &(widths[0] / 5.0),
            "it narrows: {} then {}",
            widths[0],
            widths.last().unwrap()
        );
        assert!((cs.mean() - 0.25).abs() < 0.1);
    }

    #[test]
    fn quantiles_are_the_standard_normal_ones() {
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-12);
    }
}
