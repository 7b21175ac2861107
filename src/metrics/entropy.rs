//! `entropy(x)`: Shannon entropy, in bits, of the empirical distribution of `x`
//! (DESIGN.md, "Metrics"): H = −Σ p_k log2 p_k over the distinct non-NULL values.
//!
//! NULLs are ignored (count them with `count(*) - count(x)`); a group with no non-NULL value
//! gives NULL (its diversity is unknown, not zero). One distinct value gives 0; K equally
//! frequent values give log2 K.
//!
//! Worked example: values a, a, b, c: p = (½, ¼, ¼), H = ½·1 + ¼·2 + ¼·2 = 1.5 bits.
//!
//! ```sql
//! SELECT round, entropy(domain) AS de FROM trajectories GROUP BY round ORDER BY round;
//! ```
//!
//! The partial state is the count of each distinct value (two lists), so partial aggregates
//! merge exactly; counts are summed in sorted order, so the result does not depend on how the
//! data was partitioned, bit for bit. [`domain_entropy`](super::domain_entropy),
//! [`reasoning_mode_entropy`](super::reasoning_mode_entropy) and
//! [`normalized_entropy`](super::normalized_entropy) share this implementation.

// foldhash (DataFusion's map): the labels hashed here are short, and SipHash showed in profiles.
use datafusion::common::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray, StringArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::messages::StrCol;

/// Entropy in bits of a distribution given by counts. Counts are sorted first so that the sum
/// is the same whatever order they arrive in. `None` for an empty distribution.
///
/// ```
/// use tdscale::metrics::entropy::entropy_bits;
/// assert_eq!(entropy_bits(&mut vec![2, 1, 1], false), Some(1.5));
/// assert_eq!(entropy_bits(&mut vec![5, 5, 5, 5], true), Some(1.0));
/// assert_eq!(entropy_bits(&mut vec![7], true), Some(0.0));
/// ```
pub fn entropy_bits(counts: &mut Vec<i64>, normalized: bool) -> Option<f64> {
    counts.retain(|&c| c > 0);
    if counts.is_empty() {
        return None;
    }
    counts.sort_unstable();
    let n: i64 = counts.iter().sum();
    let n = n as f64;
    let h = -counts
        .iter()
        .map(|&c| {
            let p = c as f64 / n;
            p * p.log2()
        })
        .sum::<f64>();
    // Clamp rounding noise and the −0.0 of a single value to exactly 0.
    let h = if h > 0.0 { h } else { 0.0 };
    if !normalized {
        return Some(h);
    }
    let k = counts.len();
    Some(if k <= 1 { 0.0 } else { h / (k as f64).log2() })
}

/// The aggregate, under one of its names.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Entropy {
    name: &'static str,
    normalized: bool,
    signature: Signature,
}

impl Entropy {
    /// `entropy` (bits) or a normalised variant under another name.
    pub fn new(name: &'static str, normalized: bool) -> Self {
        Self {
            name,
            normalized,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for Entropy {
    fn default() -> Self {
        Self::new("entropy", false)
    }
}

fn list_field(name: String, item: DataType) -> FieldRef {
    Arc::new(Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, true))),
        true,
    ))
}

/// Input values as strings: string columns are read in place, others are cast.
fn as_strings(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(match a.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => a.clone(),
        _ => datafusion::arrow::compute::cast(a, &DataType::Utf8)?,
    })
}

impl AggregateUDFImpl for Entropy {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            list_field(format_state_name(args.name, "values"), DataType::Utf8),
            list_field(format_state_name(args.name, "counts"), DataType::Int64),
        ])
    }
    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(EntropyAccumulator {
            normalized: self.normalized,
            counts: HashMap::new(),
        }))
    }
    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(EntropyGroups {
            normalized: self.normalized,
            ..Default::default()
        }))
    }
}

/// The simple path: one distribution (no GROUP BY, or as a window function).
#[derive(Debug)]
struct EntropyAccumulator {
    normalized: bool,
    counts: HashMap<String, i64>,
}

impl Accumulator for EntropyAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let a = as_strings(&values[0])?;
        let s = StrCol::try_new(&a, "entropy input")?;
        for i in 0..a.len() {
            if let Some(v) = s.get(i) {
                *self.counts.entry(v.to_string()).or_default() += 1;
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (values, counts) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..values.len() {
            if values.is_null(row) {
                continue;
            }
            let (v, c) = (values.value(row), counts.value(row));
            let (v, c) = (v.as_string::<i32>(), c.as_primitive::<Int64Type>());
            for j in 0..v.len() {
                *self.counts.entry(v.value(j).to_string()).or_default() += c.value(j);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = StringArray::from_iter_values(self.counts.keys());
        let counts = Int64Array::from_iter_values(self.counts.values().copied());
        Ok(vec![
            ScalarValue::List(Arc::new(single_list(Arc::new(values), DataType::Utf8))),
            ScalarValue::List(Arc::new(single_list(Arc::new(counts), DataType::Int64))),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut c: Vec<i64> = self.counts.values().copied().collect();
        Ok(ScalarValue::Float64(entropy_bits(&mut c, self.normalized)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.counts.keys().map(|k| k.capacity() + 32).sum::<usize>()
    }
}

fn single_list(values: ArrayRef, item: DataType) -> ListArray {
    ListArray::new(
        Arc::new(Field::new("item", item, true)),
        OffsetBuffer::from_lengths([values.len()]),
        values,
        None,
    )
}

/// The fast grouped path: values are interned once, each group keeps counts by value id.
#[derive(Debug, Default)]
struct EntropyGroups {
    normalized: bool,
    ids: HashMap<String, u32>,
    names: Vec<String>,
    groups: Vec<Counts>,
    /// The last input and the value id of each of its rows ([`NULL_ID`] for NULL). With
    /// GROUPING SETS the same input comes once per set; its rows are interned once. Holding
    /// the array keeps its buffers alive, so a new input cannot reuse their addresses.
    last: Option<(ArrayRef, Vec<u32>)>,
}

const NULL_ID: u32 = u32::MAX;

impl EntropyGroups {
    fn intern(&mut self, v: &str) -> u32 {
        if let Some(&id) = self.ids.get(v) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(v.to_string());
        self.ids.insert(v.to_string(), id);
        id
    }

    /// The value id of each row of `values`, computed once per input array.
    fn row_ids(&mut self, values: &ArrayRef) -> Result<Vec<u32>> {
        if let Some((prev, ids)) = self.last.take()
            && prev.to_data().ptr_eq(&values.to_data())
        {
            return Ok(ids);
        }
        let a = as_strings(values)?;
        let s = StrCol::try_new(&a, "entropy input")?;
        Ok((0..a.len())
            .map(|i| s.get(i).map_or(NULL_ID, |v| self.intern(v)))
            .collect())
    }
}

/// The counts of one group by value id: a vector indexed by id while the group's ids are dense
/// (a label column, whose few values every group sees), a map once they are not (a group that
/// sees a few of many values costs what a map costs). Switching is amortised: each switch at
/// least doubles the number of distinct values the group holds.
#[derive(Debug)]
enum Counts {
    Dense { counts: Vec<i64>, distinct: usize },
    Sparse(HashMap<u32, i64>),
}

impl Default for Counts {
    fn default() -> Self {
        Counts::Dense {
            counts: Vec::new(),
            distinct: 0,
        }
    }
}

impl Counts {
    /// Adds `n` to the count of `id`; `vocabulary` is the number of ids there are.
    #[inline]
    fn add(&mut self, id: u32, n: i64, vocabulary: usize) {
        match self {
            Counts::Dense { counts, distinct } => {
                let i = id as usize;
                if let Some(c) = counts.get_mut(i) {
                    *distinct += usize::from(*c == 0 && n != 0);
                    *c += n;
                } else if i < 8 * *distinct + 32 {
                    counts.resize(i + 1, 0);
                    counts[i] = n;
                    *distinct += usize::from(n != 0);
                } else {
                    let mut m: HashMap<u32, i64> = self.entries().collect();
                    m.insert(id, n);
                    *self = Counts::Sparse(m);
                }
            }
            Counts::Sparse(m) => {
                let before = m.len();
                *m.entry(id).or_default() += n;
                if m.len() > before && 4 * m.len() + 16 > vocabulary {
                    let mut counts = vec![0; vocabulary];
                    for (&k, &c) in m.iter() {
                        counts[k as usize] = c;
                    }
                    let distinct = counts.iter().filter(|&&c| c != 0).count();
                    *self = Counts::Dense { counts, distinct };
                }
            }
        }
    }

    /// The (id, count) pairs with a count other than 0.
    fn entries(&self) -> Box<dyn Iterator<Item = (u32, i64)> + '_> {
        match self {
            Counts::Dense { counts, .. } => Box::new(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c != 0)
                    .map(|(i, &c)| (i as u32, c)),
            ),
            Counts::Sparse(m) => Box::new(m.iter().map(|(&k, &c)| (k, c))),
        }
    }

    fn bytes(&self) -> usize {
        48 + match self {
            Counts::Dense { counts, .. } => counts.capacity() * 8,
            Counts::Sparse(m) => m.capacity() * 16,
        }
    }
}

fn filtered_out(filter: Option<&BooleanArray>, i: usize) -> bool {
    filter.is_some_and(|f| f.is_null(i) || !f.value(i))
}

impl GroupsAccumulator for EntropyGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Counts::default);
        let ids = self.row_ids(&values[0])?;
        let vocabulary = self.names.len();
        for (i, (&g, &id)) in group_indices.iter().zip(&ids).enumerate() {
            if id != NULL_ID && !filtered_out(opt_filter, i) {
                self.groups[g].add(id, 1, vocabulary);
            }
        }
        self.last = Some((values[0].clone(), ids));
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Counts::default);
        let (vals, counts) = (values[0].as_list::<i32>(), values[1].as_list::<i32>());
        let (flat_v, flat_c) = (
            vals.values().as_string::<i32>(),
            counts.values().as_primitive::<Int64Type>(),
        );
        let (ov, oc) = (vals.value_offsets(), counts.value_offsets());
        for (row, &g) in group_indices.iter().enumerate() {
            if vals.is_null(row) {
                continue;
            }
            let (vs, cs) = (ov[row] as usize, oc[row] as usize);
            for j in 0..(ov[row + 1] as usize - vs) {
                let id = self.intern(flat_v.value(vs + j));
                let vocabulary = self.names.len();
                self.groups[g].add(id, flat_c.value(cs + j), vocabulary);
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        let out: Float64Array = groups
            .into_iter()
            .map(|g| {
                let mut c: Vec<i64> = g.entries().map(|(_, c)| c).collect();
                entropy_bits(&mut c, self.normalized)
            })
            .collect();
        Ok(Arc::new(out))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.groups);
        let mut lengths = Vec::with_capacity(groups.len());
        let mut names = Vec::new();
        let mut counts = Vec::new();
        for g in &groups {
            let before = names.len();
            for (id, c) in g.entries() {
                names.push(self.names[id as usize].as_str());
                counts.push(c);
            }
            lengths.push(names.len() - before);
        }
        Ok(vec![
            Arc::new(ListArray::new(
                Arc::new(Field::new("item", DataType::Utf8, true)),
                OffsetBuffer::from_lengths(lengths.clone()),
                Arc::new(StringArray::from_iter_values(names)),
                None,
            )),
            Arc::new(ListArray::new(
                Arc::new(Field::new("item", DataType::Int64, true)),
                OffsetBuffer::from_lengths(lengths),
                Arc::new(Int64Array::from(counts)),
                None,
            )),
        ])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let a = as_strings(&values[0])?;
        let a = datafusion::arrow::compute::cast(&a, &DataType::Utf8)?;
        let s = a.as_string::<i32>();
        let keep: Vec<bool> = (0..a.len())
            .map(|i| !s.is_null(i) && !filtered_out(opt_filter, i))
            .collect();
        let lengths: Vec<usize> = keep.iter().map(|&k| usize::from(k)).collect();
        let names: StringArray = (0..a.len())
            .filter(|&i| keep[i])
            .map(|i| Some(s.value(i)))
            .collect();
        let counts = Int64Array::from(vec![1i64; names.len()]);
        Ok(vec![
            Arc::new(ListArray::new(
                Arc::new(Field::new("item", DataType::Utf8, true)),
                OffsetBuffer::from_lengths(lengths.clone()),
                Arc::new(names),
                None,
            )),
            Arc::new(ListArray::new(
                Arc::new(Field::new("item", DataType::Int64, true)),
                OffsetBuffer::from_lengths(lengths),
                Arc::new(counts),
                None,
            )),
        ])
    }

    fn size(&self) -> usize {
        self.names
            .iter()
            .map(|n| 2 * n.capacity() + 48)
            .sum::<usize>()
            + self.groups.iter().map(Counts::bytes).sum::<usize>()
            + self.last.as_ref().map_or(0, |(_, ids)| ids.capacity() * 4)
    }
}
