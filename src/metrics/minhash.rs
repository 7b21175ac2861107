//! `minhash(text[, k])`: a MinHash signature of a text, for near-duplicate and contamination
//! checks with [`jaccard`](super::jaccard).
//!
//! The text is lower-cased and split into words (runs of letters and digits); its shingles are
//! the word 3-grams (a text of one or two words is one shingle). Each of the `k` (default 64,
//! at most 1024) hash functions maps a shingle to `splitmix64(fnv1a(shingle) ^ seed_i)`; the
//! signature keeps the low 32 bits of each function's minimum (b-bit MinHash with b = 32, the
//! width of datasketch's default hash): two signatures agree where the minima agree, and
//! elsewhere by chance once in 2^32, so the fraction of positions where they agree still
//! estimates the Jaccard similarity of the shingle sets, at half the bytes of the minima. A
//! text without words gets k × u32::MAX.
//!
//! ```sql
//! SELECT a.traj_id, b.traj_id, jaccard(minhash(a.q), minhash(b.q)) AS sim
//! FROM train a, test b WHERE jaccard(minhash(a.q), minhash(b.q)) > 0.8;
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature};

use super::args::variadic_signature;
use super::messages::StrCol;

/// Default number of hash functions.
pub const DEFAULT_K: usize = 64;
const MAX_K: usize = 1024;

/// The base hashes of the shingles of `text` (word 3-grams), deduplicated.
pub fn shingles(text: &str) -> Vec<u64> {
    let mut out = vec![];
    shingles_into(text, &mut out);
    out
}

/// [`shingles`] written into `out` (cleared first), for a caller that hashes text after text.
pub fn shingles_into(text: &str, out: &mut Vec<u64>) {
    // ASCII words are lower-cased byte by byte as they are hashed: no copy of the text and no
    // list of its words (this runs for every trajectory at ingest). Other text is lower-cased
    // word by word, as Unicode lower-cases some letters by their context.
    if text.is_ascii() {
        let words = text
            .as_bytes()
            .split(|b| !b.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty());
        return hashes_of(words, text.len(), |b| b.to_ascii_lowercase(), out);
    }
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    hashes_of(words.iter().map(|w| w.as_bytes()), text.len(), |b| b, out)
}

/// The hashes of the word 3-grams (of all the words when there are fewer than three), sorted and
/// deduplicated, into `out`; `len` is the text's length, to size the list once. Each is FNV-1a of
/// its words joined by single spaces, every byte mapped by `map` as it is hashed.
fn hashes_of<'a>(
    words: impl Iterator<Item = &'a [u8]>,
    len: usize,
    map: fn(u8) -> u8,
    out: &mut Vec<u64>,
) {
    use crate::rng::{fnv1a, fnv1a_extend};
    // A word belongs to three shingles: the one it ends, the one it is the middle of and the one
    // it starts. It is read once and fed to all three hashes, whose multiplications do not wait
    // on each other, instead of once per shingle.
    let basis = fnv1a(b"");
    // The hashes, so far, of the shingles that began two words ago and one word ago.
    let (mut two_back, mut one_back) = (basis, basis);
    let mut seen = 0usize;
    // About one word in six bytes of text.
    out.clear();
    out.reserve(len / 6 + 1);
    for w in words {
        let mut ended = fnv1a_extend(two_back, b" ");
        let mut middle = fnv1a_extend(one_back, b" ");
        let mut started = basis;
        for &b in w {
            let b = [map(b)];
            ended = fnv1a_extend(ended, &b);
            middle = fnv1a_extend(middle, &b);
            started = fnv1a_extend(started, &b);
        }
        seen += 1;
        if seen >= 3 {
            out.push(ended);
        }
        (two_back, one_back) = (middle, started);
    }
    match seen {
        1 => out.push(one_back),
        2 => out.push(two_back),
        _ => {}
    }
    out.sort_unstable();
    out.dedup();
}

/// The signature of `text` with `k` hash functions.
///
/// ```
/// use tdscale::metrics::minhash::signature;
/// let a = signature("the quick brown fox jumps over the lazy dog", 128);
/// let b = signature("The quick brown fox jumps over the lazy dog!", 128);
/// assert_eq!(a, b, "case and punctuation do not matter");
/// ```
pub fn signature(text: &str, k: usize) -> Vec<u32> {
    signature_of_shingles(&shingles(text), k)
}

/// [`signature`] appended to `out`, with `shingles` as room for the text's shingles: for a
/// caller that signs text after text (ingest signs every trajectory), nothing is allocated once
/// the room has grown.
pub fn extend_with_signature(text: &str, k: usize, shingles: &mut Vec<u64>, out: &mut Vec<u32>) {
    shingles_into(text, shingles);
    extend_with_signature_of_shingles(shingles, k, out);
}

/// The seed of hash function `i`, which hashes `h ^ seed(i)`.
fn seed(i: u64) -> u64 {
    crate::rng::splitmix64(i + 1)
}

/// The seeds of the first [`MAX_K`] functions, computed once.
static SEEDS: std::sync::LazyLock<Vec<u64>> =
    std::sync::LazyLock::new(|| (0..MAX_K as u64).map(seed).collect());

/// The signature with `k` hash functions of a set of shingle hashes ([`shingles`]): the low 32
/// bits of each function's least hash ([`least_hashes_with`]).
pub fn signature_of_shingles(shingles: &[u64], k: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(k);
    extend_with_signature_of_shingles(shingles, k, &mut out);
    out
}

/// [`signature_of_shingles`] appended to `out`.
fn extend_with_signature_of_shingles(shingles: &[u64], k: usize, out: &mut Vec<u32>) {
    // The default width on the stack (a wider array would be cleared for every text).
    let mut on_stack = [0u64; DEFAULT_K];
    let mut on_heap;
    let least = if k <= DEFAULT_K {
        &mut on_stack[..k]
    } else {
        on_heap = vec![0u64; k];
        &mut on_heap[..]
    };
    least_hashes_into(*BEST_KERNEL, shingles, least);
    // b-bit MinHash: the low bits of a uniformly random minimum are uniformly random.
    out.extend(least.iter().map(|&h| h as u32));
}

/// For each of `k` hash functions, the least `splitmix64(h ^ seed_i)` over the shingles
/// (`u64::MAX` for none), computed by a given kernel; one this processor lacks (not in
/// [`Kernel::available`]) gives way to the portable one.
pub fn least_hashes_with(kernel: Kernel, shingles: &[u64], k: usize) -> Vec<u64> {
    let mut out = vec![0; k];
    least_hashes_into(kernel, shingles, &mut out);
    out
}

/// [`least_hashes_with`] for `out.len()` functions, written into `out`.
pub fn least_hashes_into(kernel: Kernel, shingles: &[u64], out: &mut [u64]) {
    let k = out.len();
    out.fill(u64::MAX);
    let extra: Vec<u64>;
    let seeds = if k <= MAX_K {
        &SEEDS[..k]
    } else {
        extra = (0..k as u64).map(seed).collect();
        &extra
    };
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 if kernel.is_available() => {
            // SAFETY: the processor was just found to have the features the function is
            // compiled for.
            unsafe { least_hashes_avx512(shingles, seeds, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 if kernel.is_available() => {
            // SAFETY: as above.
            unsafe { least_hashes_avx2(shingles, seeds, out) }
        }
        _ => least_hashes(shingles, seeds, out),
    }
}

/// The ways this build can compute a signature: the same values, the vector ones several times
/// faster (signatures are computed for every trajectory at ingest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Any processor.
    Portable,
    /// x86-64 with AVX2: four hashes at a time, each 64-bit multiplication made of 32-bit ones.
    Avx2,
    /// x86-64 with AVX-512 (F, DQ, VL): eight hashes at a time, with 64-bit multiplications.
    Avx512,
}

impl Kernel {
    /// The kernels this processor can run, the fastest last.
    pub fn available() -> Vec<Kernel> {
        [Kernel::Portable, Kernel::Avx2, Kernel::Avx512]
            .into_iter()
            .filter(|k| k.is_available())
            .collect()
    }

    fn is_available(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// The fastest kernel of this processor, found once.
static BEST_KERNEL: std::sync::LazyLock<Kernel> = std::sync::LazyLock::new(|| {
    *Kernel::available()
        .last()
        .expect("the portable kernel is always available")
});

/// Hash functions taken together: each block's minima stay in registers while every shingle
/// goes by, which lets the compiler use vector lanes.
const BLOCK: usize = 16;

#[inline(always)]
fn least_hashes(shingles: &[u64], seeds: &[u64], out: &mut [u64]) {
    use crate::rng::splitmix64;
    let mut out_blocks = out.chunks_exact_mut(BLOCK);
    let mut seed_blocks = seeds.chunks_exact(BLOCK);
    for (o, s) in (&mut out_blocks).zip(&mut seed_blocks) {
        let mut least = [u64::MAX; BLOCK];
        for &h in shingles {
            for (m, s) in least.iter_mut().zip(s) {
                *m = (*m).min(splitmix64(h ^ s));
            }
        }
        o.copy_from_slice(&least);
    }
    let rest = out_blocks.into_remainder();
    for (o, s) in rest.iter_mut().zip(seed_blocks.remainder()) {
        *o = shingles
            .iter()
            .map(|&h| splitmix64(h ^ s))
            .min()
            .unwrap_or(u64::MAX);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn least_hashes_avx2(shingles: &[u64], seeds: &[u64], out: &mut [u64]) {
    least_hashes(shingles, seeds, out)
}

/// AVX-512 has the 64-bit multiplication and unsigned minimum that AVX2 lacks: 2.6 times as
/// fast as the AVX2 kernel on 200 shingles (benches/RESULTS.md).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
fn least_hashes_avx512(shingles: &[u64], seeds: &[u64], out: &mut [u64]) {
    least_hashes(shingles, seeds, out)
}

/// The UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MinHash {
    signature: Signature,
}

impl Default for MinHash {
    fn default() -> Self {
        Self {
            signature: variadic_signature(1, 2),
        }
    }
}

fn item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::UInt32, true))
}

impl ScalarUDFImpl for MinHash {
    fn name(&self) -> &str {
        "minhash"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(item()))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text = StrCol::try_new(&arrays[0], "minhash(text)")?;
        let k = match arrays.get(1) {
            None => DEFAULT_K,
            Some(a) => {
                let a = datafusion::arrow::compute::cast(a, &DataType::Int64)?;
                let a = a.as_primitive::<Int64Type>();
                if a.is_empty() || a.is_null(0) {
                    DEFAULT_K
                } else {
                    let k = a.value(0);
                    if !(1..=MAX_K as i64).contains(&k) {
                        return Err(DataFusionError::Execution(format!(
                            "minhash: k must be between 1 and {MAX_K}, got {k}"
                        )));
                    }
                    k as usize
                }
            }
        };
        let n = arrays[0].len();
        let mut values = Vec::with_capacity(n * k);
        let mut lengths = Vec::with_capacity(n);
        for i in 0..n {
            match text.get(i) {
                Some(t) => {
                    values.extend(signature(t, k));
                    lengths.push(k);
                }
                None => lengths.push(0),
            }
        }
        Ok(super::args::list_result(
            item(),
            lengths,
            Arc::new(UInt32Array::from(values)),
            (0..n).map(|i| text.get(i).is_some()),
        ))
    }
}
