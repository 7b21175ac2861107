//! Finds the signatures whose estimated Jaccard similarity reaches a threshold without
//! comparing every pair, and without missing one.
//!
//! A similarity of at least `t` between two signatures of `n` values means that at most
//! `d = n − ⌈t·n⌉` positions differ. Cut into `d + 1` bands, two such signatures therefore agree
//! on every value of at least one band (pigeonhole), so every pair at or above the threshold
//! shares a band; each pair that shares one is then confirmed on the whole signature, first on
//! the low byte of each value (a quarter of the memory, and enough to reject nearly every pair
//! below the threshold), then on the values. The bands
//! are as wide as the threshold allows: at 0.8 with 64 values, 13 bands of 4 or 5 values, where
//! fixed bands of 2 values would make most pairs of texts on one subject candidates (on the
//! benchmark's generated corpus, 38 % of random pairs against 0.7 %).

use std::hash::BuildHasher;
use std::ops::ControlFlow;

use datafusion::common::HashMap;

/// The estimated Jaccard similarity of two signatures: the fraction of positions that agree.
///
/// ```
/// use tdscale::metrics::lsh::similarity;
/// assert_eq!(similarity(&[1, 2, 3, 4], &[1, 2, 0, 4]), 0.75);
/// ```
pub fn similarity(a: &[u32], b: &[u32]) -> f64 {
    agreeing(a, b) as f64 / a.len().max(1) as f64
}

/// An index of signatures by band, for one threshold. Signatures of another length than the
/// first one's are kept (their numbers count) but match nothing: their similarity is not
/// defined.
///
/// ```
/// use tdscale::metrics::lsh::LshIndex;
/// let mut index = LshIndex::new(0.75);
/// index.insert(&[1, 2, 3, 4]);
/// index.insert(&[5, 6, 7, 8]);
/// assert_eq!(index.query(&[1, 2, 0, 4]), vec![(0, 0.75)]);
/// assert!(index.query(&[1, 0, 0, 4]).is_empty());
/// ```
pub struct LshIndex {
    threshold: f64,
    /// The length of the signatures that match, the first one's.
    len: Option<usize>,
    /// The fewest agreeing positions that reach the threshold.
    agree: usize,
    /// Where each band ends; empty when every pair qualifies (a threshold of 0 or less), which
    /// no band finds, so that every signature is compared.
    band_ends: Vec<usize>,
    /// Per band, the signatures by the hash of their values in it (a hash collision only adds
    /// a candidate, which the whole signature then rejects). Numbers as `u32`: a bucket's walk
    /// reads half the memory, and 2^32 signatures would not fit in memory anyway.
    bands: Vec<HashMap<u64, Vec<u32>>>,
    /// The values of every signature, one after the other, `len` each (zeros for one of another
    /// length): a candidate's place follows from its number, without a pointer to load first.
    values: Vec<u32>,
    /// The low byte of each of `values`. Two signatures agree at most where these agree, so
    /// counting them rejects most candidates below the threshold from a quarter of the memory;
    /// only the others are compared on their values.
    low_bytes: Vec<u8>,
    /// Whether each signature has the indexed length.
    comparable: Vec<bool>,
    hasher: std::collections::hash_map::RandomState,
    /// Per signature, the number of the last visit that met it as a candidate (`visits` counts
    /// them): a signature in several of a query's buckets is looked at once, without a set of
    /// the candidates seen (hashing each one was a quarter of a near-duplicate search).
    last_visit_of: Vec<u32>,
    visits: u32,
}

/// How many candidates ahead of the one compared a bucket's walk asks for the low bytes: the
/// reads of a few candidates overlap instead of waiting for memory one after the other.
const PREFETCH_AHEAD: usize = 8;

/// Asks the processor to bring the line of `p` into its caches; a hint, never a read.
#[inline(always)]
fn prefetch(p: &u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch neither reads nor faults, whatever the address; this one is valid.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(p).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The positions where `a` and `b` agree, 32 at a time: each block's count fits a byte, which
/// lets the comparison run on whole vector registers.
fn agreeing_bytes(a: &[u8], b: &[u8]) -> usize {
    let (blocks_a, blocks_b) = (a.chunks_exact(32), b.chunks_exact(32));
    let rest = agreeing(blocks_a.remainder(), blocks_b.remainder());
    let blocks: usize = blocks_a
        .zip(blocks_b)
        .map(|(x, y)| x.iter().zip(y).map(|(x, y)| u8::from(x == y)).sum::<u8>() as usize)
        .sum();
    blocks + rest
}

/// The positions where `a` and `b` agree.
fn agreeing<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x == y).count()
}

impl LshIndex {
    /// An empty index of the signatures at or above `threshold` similarity.
    pub fn new(threshold: f64) -> Self {
        Self {
            threshold,
            len: None,
            agree: 0,
            band_ends: vec![],
            bands: vec![],
            values: vec![],
            low_bytes: vec![],
            comparable: vec![],
            hasher: Default::default(),
            last_visit_of: vec![],
            visits: 0,
        }
    }

    /// An empty index with room for `signatures` signatures of `len` values, so that an index
    /// of a known number of signatures does not copy the ones it holds as it grows.
    pub fn with_capacity(threshold: f64, signatures: usize, len: usize) -> Self {
        let mut index = Self::new(threshold);
        index.values.reserve_exact(signatures * len);
        index.low_bytes.reserve_exact(signatures * len);
        index.comparable.reserve_exact(signatures);
        index.last_visit_of.reserve_exact(signatures);
        index
    }

    /// The fewest agreeing positions of two signatures of `n` values that reach the
    /// threshold, as [`similarity`] computes it (`n` when none does).
    fn agree_for(&self, n: usize) -> usize {
        (0..=n)
            .find(|&m| m as f64 / n.max(1) as f64 >= self.threshold)
            .unwrap_or(n)
    }

    /// The ends of the bands for signatures of `n` values: one band more than the positions
    /// that may differ at the threshold, the widths differing by at most one; none when every
    /// pair qualifies. (A threshold above 1 needs more agreeing positions than there are: no
    /// pair qualifies, and one band of every value finds only identical ones, which the
    /// similarity then rejects.)
    fn band_ends_for(&self, n: usize) -> Vec<usize> {
        let agree = self.agree_for(n);
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
    pub fn insert(&mut self, sig: &[u32]) -> usize {
        let len = match self.len {
            Some(len) => len,
            None => {
                self.agree = self.agree_for(sig.len());
                self.band_ends = self.band_ends_for(sig.len());
                self.bands = vec![HashMap::default(); self.band_ends.len()];
                *self.len.insert(sig.len())
            }
        };
        let id = self.comparable.len();
        let comparable = sig.len() == len;
        if comparable {
            let number = u32::try_from(id).expect("an LshIndex holds fewer than 2^32 signatures");
            let keys: Vec<u64> = self.band_keys(sig).collect();
            for (band, key) in self.bands.iter_mut().zip(keys) {
                band.entry(key).or_default().push(number);
            }
            self.values.extend_from_slice(sig);
            self.low_bytes.extend(sig.iter().map(|&v| v as u8));
        } else {
            self.values.resize(self.values.len() + len, 0);
            self.low_bytes.resize(self.low_bytes.len() + len, 0);
        }
        self.comparable.push(comparable);
        self.last_visit_of.push(0);
        id
    }

    /// The indexed signatures at or above the threshold similarity to `sig`, with the
    /// similarity, by number.
    pub fn query(&mut self, sig: &[u32]) -> Vec<(usize, f64)> {
        let mut out = vec![];
        self.visit_near(sig, |id, s| {
            out.push((id, s));
            ControlFlow::Continue(())
        });
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// Calls `visit` with the number and similarity of each indexed signature at or above the
    /// threshold similarity to `sig`, once each, in no particular order. Stops when `visit`
    /// breaks.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use tdscale::metrics::lsh::LshIndex;
    /// let mut index = LshIndex::new(0.75);
    /// index.insert(&[1, 2, 3, 4]);
    /// index.insert(&[1, 2, 3, 5]);
    /// // Is any indexed signature a near-duplicate of this one?
    /// let mut found = None;
    /// index.visit_near(&[1, 2, 0, 4], |id, similarity| {
    ///     found = Some((id, similarity));
    ///     ControlFlow::Break(())
    /// });
    /// assert_eq!(found, Some((0, 0.75)));
    /// ```
    pub fn visit_near(
        &mut self,
        sig: &[u32],
        mut visit: impl FnMut(usize, f64) -> ControlFlow<()>,
    ) {
        let Some(len) = self.len.filter(|&len| len == sig.len()) else {
            // Nothing indexed yet, or a signature of another length.
            return;
        };
        let at = |id: usize| id * len..(id + 1) * len;
        let query_low: Vec<u8> = sig.iter().map(|&v| v as u8).collect();
        let (threshold, agree) = (self.threshold, self.agree);
        // The low bytes first: they reject nearly every candidate below the threshold.
        let may_be_near = |id: usize| agreeing_bytes(&query_low, &self.low_bytes[at(id)]) >= agree;
        let near = |id: usize| {
            let s = similarity(sig, &self.values[at(id)]);
            (s >= threshold).then_some(s)
        };
        if self.bands.is_empty() {
            // Every pair qualifies: no band finds them all.
            for (id, &comparable) in self.comparable.iter().enumerate() {
                if comparable
                    && may_be_near(id)
                    && let Some(s) = near(id)
                    && visit(id, s).is_break()
                {
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
            let Some(ids) = band.get(&key) else { continue };
            for (i, &id) in ids.iter().enumerate() {
                let id = id as usize;
                if let Some(&ahead) = ids.get(i + PREFETCH_AHEAD) {
                    prefetch(&self.low_bytes[ahead as usize * len]);
                }
                // Only a candidate that passes its low bytes is marked as visited (one rejected
                // on them is rejected again in another bucket, from the caches the first one
                // filled); it is compared on its values once, however many bands it shares.
                if may_be_near(id) && self.last_visit_of[id] != self.visits {
                    self.last_visit_of[id] = self.visits;
                    if let Some(s) = near(id)
                        && visit(id, s).is_break()
                    {
                        return;
                    }
                }
            }
        }
    }
}
