//! Greedy maximum coverage: pick the clusters that cover the most distinct items (tools and
//! capabilities) with the least overlap, each cluster also worth a fixed bonus of its own (the
//! scores of its dependency edges, which no other cluster shares).
//!
//! The pass is lazy: a cluster's gain can only shrink as others are picked (coverage is
//! submodular), so a stale gain is an upper bound, and only the top of a priority queue is ever
//! recomputed. The picks are those of the plain greedy pass, in the same order.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

/// One pick: the cluster's index, how many new items it covered, and what it was valued at
/// (new items plus its bonus).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub cluster: usize,
    pub gain: usize,
    pub value: f64,
}

/// A queue entry: a cluster and its gain when last computed.
struct Candidate {
    value: f64,
    size: usize,
    index: usize,
    gain: usize,
}

impl Candidate {
    /// Larger value first; then the smaller set; then the lower index.
    fn key_cmp(&self, other: &Self) -> Ordering {
        self.value
            .total_cmp(&other.value)
            .then(other.size.cmp(&self.size))
            .then(other.index.cmp(&self.index))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.key_cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key_cmp(other)
    }
}

/// Picks up to `n` sets greedily by marginal coverage (ties: the smaller set, then the lower
/// index). Stops early when no set adds anything. The greedy value is at least (1 − 1/e) of the
/// best possible coverage with `n` sets.
///
/// ```
/// use tdscale::clusters::selection::greedy_max_coverage;
/// let sets = vec![vec!["a", "b"], vec!["b", "c", "d"], vec!["a"]];
/// let picks = greedy_max_coverage(&sets, 2);
/// // Then {a} and {a, b} both add one item: the smaller set wins the tie.
/// assert_eq!(picks.iter().map(|p| (p.cluster, p.gain)).collect::<Vec<_>>(), [(1, 3), (2, 1)]);
/// ```
pub fn greedy_max_coverage<T: Eq + std::hash::Hash + Clone>(
    sets: &[Vec<T>],
    n: usize,
) -> Vec<Pick> {
    greedy_weighted_coverage(sets, &vec![0.0; sets.len()], n)
}

/// Greedy coverage where each set `i` is also worth `bonus[i]` (non-negative) when picked: the
/// value of a pick is the number of new items plus its bonus. Stops when no set adds any value.
///
/// ```
/// use tdscale::clusters::selection::greedy_weighted_coverage;
/// let sets = vec![vec!["a", "b"], vec!["c", "d"]];
/// // Two sets of equal coverage: the one with the stronger internal dependencies comes first.
/// let picks = greedy_weighted_coverage(&sets, &[0.0, 1.5], 2);
/// assert_eq!(picks.iter().map(|p| (p.cluster, p.value)).collect::<Vec<_>>(), [(1, 3.5), (0, 2.0)]);
/// ```
pub fn greedy_weighted_coverage<T: Eq + std::hash::Hash + Clone>(
    sets: &[Vec<T>],
    bonus: &[f64],
    n: usize,
) -> Vec<Pick> {
    let distinct: Vec<Vec<&T>> = sets
        .iter()
        .map(|s| {
            let mut seen = HashSet::new();
            s.iter().filter(|x| seen.insert(*x)).collect()
        })
        .collect();
    let extra = |i: usize| bonus.get(i).copied().unwrap_or(0.0).max(0.0);
    let mut heap: BinaryHeap<Candidate> = distinct
        .iter()
        .enumerate()
        .map(|(i, s)| Candidate {
            value: s.len() as f64 + extra(i),
            size: sets[i].len(),
            index: i,
            gain: s.len(),
        })
        .collect();
    let mut covered: HashSet<&T> = HashSet::new();
    let mut picks = vec![];
    while picks.len() < n {
        let Some(mut top) = heap.pop() else { break };
        let gain = distinct[top.index]
            .iter()
            .filter(|x| !covered.contains(**x))
            .count();
        top.gain = gain;
        top.value = gain as f64 + extra(top.index);
        if heap
            .peek()
            .is_some_and(|next| top.key_cmp(next) == Ordering::Less)
        {
            // stale: another set may be better now
            heap.push(top);
            continue;
        }
        if top.value <= 0.0 {
            break;
        }
        covered.extend(distinct[top.index].iter().copied());
        picks.push(Pick {
            cluster: top.index,
            gain: top.gain,
            value: top.value,
        });
    }
    picks
}
