//! Locality-sensitive hashing over MinHash signatures: finds the pairs of texts whose estimated
//! Jaccard similarity reaches a threshold without comparing every pair. Signatures are cut into
//! bands of 2 values; two signatures that agree on any band become candidates, and each candidate
//! pair is confirmed on the whole signature. With 64-value signatures (32 bands) a pair of
//! similarity 0.6 is found with probability 1 − (1 − 0.6²)³² > 0.9999.

use std::collections::HashMap;

/// Values per band.
const ROWS: usize = 2;

/// The estimated Jaccard similarity of two signatures: the fraction of positions that agree.
///
/// ```
/// use tdscale::metrics::lsh::similarity;
/// assert_eq!(similarity(&[1, 2, 3, 4], &[1, 2, 0, 4]), 0.75);
/// ```
pub fn similarity(a: &[u32], b: &[u32]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len().max(1) as f64
}

/// An index of signatures by band.
#[derive(Default)]
pub struct LshIndex {
    bands: Vec<HashMap<(u32, u32), Vec<usize>>>,
    signatures: Vec<Vec<u32>>,
}

impl LshIndex {
    /// Adds a signature; returns its number.
    pub fn insert(&mut self, sig: Vec<u32>) -> usize {
        let n = sig.len() / ROWS;
        if self.bands.len() < n {
            self.bands.resize_with(n, HashMap::new);
        }
        let id = self.signatures.len();
        for b in 0..n {
            self.bands[b]
                .entry((sig[b * ROWS], sig[b * ROWS + 1]))
                .or_default()
                .push(id);
        }
        self.signatures.push(sig);
        id
    }

    /// The indexed signatures at or above `threshold` similarity to `sig`, with the similarity.
    pub fn query(&self, sig: &[u32], threshold: f64) -> Vec<(usize, f64)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = vec![];
        for (b, band) in self.bands.iter().enumerate().take(sig.len() / ROWS) {
            for &id in band
                .get(&(sig[b * ROWS], sig[b * ROWS + 1]))
                .into_iter()
                .flatten()
            {
                if seen.insert(id) {
                    let s = similarity(sig, &self.signatures[id]);
                    if s >= threshold {
                        out.push((id, s));
                    }
                }
            }
        }
        out.sort_by_key(|(id, _)| *id);
        out
    }
}
