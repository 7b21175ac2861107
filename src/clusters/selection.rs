//! Greedy maximum coverage: pick the clusters that cover the most distinct items (tools and
//! capabilities) with the least overlap.

use std::collections::HashSet;

/// One pick: the cluster's index and how many new items it covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub cluster: usize,
    pub gain: usize,
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
    let mut covered: HashSet<T> = HashSet::new();
    let mut used = vec![false; sets.len()];
    let mut picks = vec![];
    while picks.len() < n {
        let best = (0..sets.len())
            .filter(|&i| !used[i])
            .map(|i| {
                let gain = sets[i]
                    .iter()
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .filter(|x| !covered.contains(*x))
                    .count();
                (i, gain)
            })
            .max_by(|a, b| {
                a.1.cmp(&b.1)
                    .then(sets[b.0].len().cmp(&sets[a.0].len()))
                    .then(b.0.cmp(&a.0))
            });
        match best {
            Some((i, gain)) if gain > 0 => {
                used[i] = true;
                covered.extend(sets[i].iter().cloned());
                picks.push(Pick { cluster: i, gain });
            }
            _ => break,
        }
    }
    picks
}
