//! Finds the signatures whose estimated Jaccard similarity reaches a threshold without
//! comparing every pair, and without missing one.
//!
//! A similarity of at least `t` between two signatures of `n` values means that at most
//! `d = n − ⌈t·n⌉` positions differ. Cut into `d + 1` bands, two such signatures therefore agree
//! on every value of at least one band (pigeonhole), so every pair at or above the threshold
//! shares a band; each pair that shares one is then confirmed on the whole signature. The bands
//! are as wide as the threshold allows: at 0.8 with 64 values, 13 bands of 4 or 5 values, where
//! fixed bands of 2 values would make most pairs of texts on one subject candidates (on the
//! benchmark's generated corpus, 38 % of random pairs against 0.7 %).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::ops::ControlFlow;

/// The estimated Jaccard similarity of two signatures: the fraction of positions that agree.
///
/// ```
/// use tdscale::metrics::lsh::similarity;
/// assert_eq!(similarity(&[1, 2, 3, 4], &[1, 2, 0, 4]), 0.75);
/// ```
pub fn similarity(a: &[u32], b: &[u32]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len().max(1) as f64
}

/// An index of signatures by band, for one threshold. Signatures of another length than the
/// first one's are kept (their numbers count) but match nothing: their similarity is not
/// defined.
///
/// ```
/// use tdscale::metrics::lsh::LshIndex;
/// let mut index = LshIndex::new(0.75);
/// index.insert(vec![1, 2, 3, 4]);
/// index.insert(vec![5, 6, 7, 8]);
/// assert_eq!(index.query(&[1, 2, 0, 4]), vec![(0, 0.75)]);
/// assert!(index.query(&[1, 0, 0, 4]).is_empty());
/// ```
pub struct LshIndex {
    threshold: f64,
    /// The length of the signatures that match, the first one's.
    len: Option<usize>,
    /// Where each band ends; empty when every pair qualifies (a threshold of 0 or less), which
    /// no band finds, so that every signature is compared.
    band_ends: Vec<usize>,
    /// Per band, the signatures by the hash of their values in it (a hash collision only adds
    /// a candidate, which the whole signature then rejects).
    bands: Vec<HashMap<u64, Vec<usize>>>,
    signatures: Vec<Vec<u32>>,
    hasher: std::collections::hash_map::RandomState,
    /// Per signature, the number of the last visit that met it as a candidate (`visits` counts
    /// them): a signature in several of a query's buckets is looked at once, without a set of
    /// the candidates seen (hashing each one was a quarter of a near-duplicate search).
    last_visit_of: Vec<u32>,
    visits: u32,
}

impl LshIndex {
    /// An empty index of the signatures at or above `threshold` similarity.
    pub fn new(threshold: f64) -> Self {
        Self {
            threshold,
            len: None,
            band_ends: vec![],
            bands: vec![],
            signatures: vec![],
            hasher: Default::default(),
            last_visit_of: vec![],
            visits: 0,
        }
    }

    /// The ends of the bands for signatures of `n` values: one band more than the positions
    /// that may differ at the threshold, the widths differing by at most one; none when every
    /// pair qualifies. (A threshold above 1 needs more agreeing positions than there are: no
    /// pair qualifies, and one band of every value finds only identical ones, which the
    /// similarity then rejects.)
    fn band_ends_for(&self, n: usize) -> Vec<usize> {
        // The fewest agreeing positions that reach the threshold, as `similarity` computes it.
        let agree = (0..=n)
            .find(|&m| m as f64 / n.max(1) as f64 >= self.threshold)
            .unwrap_or(n);
        if agree == 0 {
            return vec![];
        }
        let bands = n - agree + 1;
        let (width, wider) = (n / bands, n % bands);
        let mut end = 0;
        (0..bands)
            .map(|b| {
                end += width + usize::from(b < wider);
                end
            })
            .collect()
    }

    fn band_keys<'a>(&'a self, sig: &'a [u32]) -> impl Iterator<Item = u64> + 'a {
        let starts = std::iter::once(0).chain(self.band_ends.iter().copied());
        starts
            .zip(&self.band_ends)
            .map(move |(start, &end)| self.hasher.hash_one(&sig[start..end]))
    }

    /// Adds a signature; returns its number.
    pub fn insert(&mut self, sig: Vec<u32>) -> usize {
        let len = match self.len {
            Some(len) => len,
            None => {
                self.band_ends = self.band_ends_for(sig.len());
                self.bands = vec![HashMap::new(); self.band_ends.len()];
                *self.len.insert(sig.len())
            }
        };
        let id = self.signatures.len();
        if sig.len() == len {
            let keys: Vec<u64> = self.band_keys(&sig).collect();
            for (band, key) in self.bands.iter_mut().zip(keys) {
                band.entry(key).or_default().push(id);
            }
        }
        self.signatures.push(sig);
        self.last_visit_of.push(0);
        id
    }

    /// The indexed signatures at or above the threshold similarity to `sig`, with the
    /// similarity, by number.
    pub fn query(&mut self, sig: &[u32]) -> Vec<(usize, f64)> {
        let threshold = self.threshold;
        let mut out = vec![];
        self.visit_candidates(sig, |id, other| {
            let s = similarity(sig, other);
            if s >= threshold {
                out.push((id, s));
            }
            ControlFlow::Continue(())
        });
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// Calls `visit` with the number and signature of each indexed signature that shares a
    /// band with `sig`, once each: every one at or above the threshold and some below it,
    /// which the caller compares (or skips, when it already knows the answer). Stops when
    /// `visit` breaks.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use tdscale::metrics::lsh::{LshIndex, similarity};
    /// let mut index = LshIndex::new(0.75);
    /// index.insert(vec![1, 2, 3, 4]);
    /// index.insert(vec![1, 2, 3, 5]);
    /// // Is any indexed signature a near-duplicate of this one?
    /// let mut found = None;
    /// index.visit_candidates(&[1, 2, 0, 4], |id, other| {
    ///     if similarity(&[1, 2, 0, 4], other) >= 0.75 {
    ///         found = Some(id);
    ///         return ControlFlow::Break(());
    ///     }
    ///     ControlFlow::Continue(())
    /// });
    /// assert_eq!(found, Some(0));
    /// ```
    pub fn visit_candidates(
        &mut self,
        sig: &[u32],
        mut visit: impl FnMut(usize, &[u32]) -> ControlFlow<()>,
    ) {
        if self.len != Some(sig.len()) {
            // Nothing indexed yet, or a signature of another length.
            return;
        }
        if self.bands.is_empty() {
            // Every pair qualifies: no band finds them all.
            for (id, other) in self.signatures.iter().enumerate() {
                if other.len() == sig.len() && visit(id, other).is_break() {
                    return;
                }
            }
            return;
        }
        self.visits = self.visits.wrapping_add(1);
        if self.visits == 0 {
            self.last_visit_of.fill(0);
            self.visits = 1;
        }
        let keys: Vec<u64> = self.band_keys(sig).collect();
        for (band, key) in self.bands.iter().zip(keys) {
            for &id in band.get(&key).into_iter().flatten() {
                if self.last_visit_of[id] != self.visits {
                    self.last_visit_of[id] = self.visits;
                    if visit(id, &self.signatures[id]).is_break() {
                        return;
                    }
                }
            }
        }
    }
}
