//! Device tensors: placed shards of one buffer, read and written from ndarray.

use super::placement::{Placement, ShardSpec};
use super::{MemoryOp, RuntimeError, Shared, TensorShapeError};
use crate::ir::ArgValue;
use crate::machine::Machine;
use crate::DType;
use ndarray::{Array2, ArrayBase, ArrayD, Data, Dimension, Ix2, IxDyn};
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
    impl Sealed for i32 {}
}

/// A host element type a tensor can be built from and read back into:
/// `f32`, `half::f16`, `half::bf16`, `i32`.
pub trait HostElement: Copy + Send + Sync + fmt::Debug + 'static + sealed::Sealed {
    /// The device element type it maps to.
    const DTYPE: DType;
    /// Writes the value as little-endian bytes into `out`.
    fn put(self, out: &mut [u8]);
    /// Reads a little-endian value.
    fn get(b: &[u8]) -> Self;
}

/// A floating host element type (`f32`, `f16`, `bf16`): how an `f64`
/// rounds into it and back, and its unit roundoff. Host references that
/// check a device result round their inputs with it and bound their error
/// by it.
pub trait HostFloat: HostElement {
    /// The largest relative error of one rounding to nearest: 2^-24 for
    /// `f32`, 2^-11 for `f16`, 2^-8 for `bf16`.
    const U: f64;
    /// `v` rounded to the nearest value of the type.
    fn round(v: f64) -> Self;
    /// The value, exactly, as an `f64`.
    fn wide(self) -> f64;
}

impl HostFloat for f32 {
    const U: f64 = 5.960_464_477_539_063e-8;
    fn round(v: f64) -> Self {
        v as f32
    }
    fn wide(self) -> f64 {
        f64::from(self)
    }
}

impl HostFloat for half::f16 {
    const U: f64 = 4.882_812_5e-4;
    fn round(v: f64) -> Self {
        half::f16::from_f64(v)
    }
    fn wide(self) -> f64 {
        self.to_f64()
    }
}

impl HostFloat for half::bf16 {
    const U: f64 = 3.906_25e-3;
    fn round(v: f64) -> Self {
        half::bf16::from_f64(v)
    }
    fn wide(self) -> f64 {
        self.to_f64()
    }
}

impl HostElement for f32 {
    const DTYPE: DType = DType::F32;
    fn put(self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl HostElement for i32 {
    const DTYPE: DType = DType::I32;
    fn put(self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl HostElement for half::f16 {
    const DTYPE: DType = DType::F16;
    fn put(self, out: &mut [u8]) {
        out[..2].copy_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        half::f16::from_le_bytes([b[0], b[1]])
    }
}

impl HostElement for half::bf16 {
    const DTYPE: DType = DType::Bf16;
    fn put(self, out: &mut [u8]) {
        out[..2].copy_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        half::bf16::from_le_bytes([b[0], b[1]])
    }
}

/// Encodes a host value (rounded to the type; integers truncated) as little-endian bytes.
pub(crate) fn encode_f64(dtype: DType, v: f64, out: &mut [u8]) {
    match dtype {
        DType::I32 => (v as i32).put(out),
        d => d.encode(v as f32, out),
    }
}

/// A tensor on the device: one buffer with one virtual address, its shards
/// in the HBM slices of the PEs its [`Placement`] chose inside one SIP.
///
/// Reads and writes go through the machine's page tables, as a DMA would.
/// Launches are synchronous, so a host read never races device work (the
/// host-read barrier of ADR-0027 is trivially met). Dropping a tensor frees it.
pub struct DeviceTensor {
    pub(super) shared: Arc<Shared>,
    pub(super) va: u64,
    pub(super) dtype: DType,
    pub(super) shape: Vec<usize>,
    pub(super) placement: Placement,
    pub(super) shards: Vec<ShardSpec>,
    pub(super) storage: usize,
    pub(super) live: bool,
}

impl fmt::Debug for DeviceTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pes: Vec<String> = self.shards.iter().map(|s| s.pe_id().to_string()).collect();
        f.debug_struct("DeviceTensor")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .field("va", &format_args!("{:#x}", self.va))
            .field("shards", &pes)
            .finish()
    }
}

impl DeviceTensor {
    /// The shape (one or two dimensions).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Elements of the tensor (not counting replicas).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The policy it was placed with.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Its shards, in placement order (cube-major, then PE).
    pub fn shards(&self) -> &[ShardSpec] {
        &self.shards
    }

    /// The SIP it lives on.
    pub fn sip(&self) -> u16 {
        self.shards[0].sip
    }

    /// Its virtual address (the same on every PE).
    pub fn va(&self) -> u64 {
        self.va
    }

    /// Elements of its device storage (every shard, replicas included).
    pub fn storage_len(&self) -> usize {
        self.storage
    }

    /// The length every shard has, when they all have the same.
    pub fn uniform_shard_len(&self) -> Option<usize> {
        let l = self.shards[0].len;
        self.shards.iter().all(|s| s.len == l).then_some(l)
    }

    /// The 2-D shape a kernel sees for this tensor: its shards stacked,
    /// `[shards * block_rows, block_cols]`, when every shard's block has the
    /// same shape (so instance `i` finds its block at row `i * block_rows`);
    /// otherwise the flat storage `[1, storage_len]`. A single-shard tensor
    /// is seen with its own shape (a 1-D tensor as one row).
    pub fn launch_shape(&self) -> [usize; 2] {
        let b = self.shards[0].block_shape();
        if self.shards.iter().all(|s| s.block_shape() == b) {
            [self.shards.len() * b[0], b[1]]
        } else {
            [1, self.storage]
        }
    }

    /// The tensor as a `Tensor<T>` kernel argument (see [`DeviceTensor::launch_shape`]).
    pub fn arg_tensor(&self) -> ArgValue {
        ArgValue::Tensor {
            va: self.va,
            dtype: self.dtype,
            shape: self.launch_shape(),
        }
    }

    /// The tensor as a `Ptr<T>` kernel argument over its whole storage.
    pub fn arg_ptr(&self) -> ArgValue {
        ArgValue::Ptr {
            va: self.va,
            dtype: self.dtype,
            len: self.storage,
        }
    }

    fn dims2(&self) -> (usize, usize) {
        match self.shape[..] {
            [n] => (1, n),
            [r, c] => (r, c),
            _ => unreachable!("tensors are 1-D or 2-D (checked at creation)"),
        }
    }

    fn check_dtype<T: HostElement>(&self, what: &str) -> Result<(), RuntimeError> {
        if T::DTYPE != self.dtype {
            return Err(RuntimeError::DType {
                what: what.into(),
                tensor: self.dtype,
                host: T::DTYPE,
            });
        }
        Ok(())
    }

    fn mem_err(what: MemoryOp) -> impl Fn(crate::machine::MemError) -> RuntimeError {
        move |err| RuntimeError::Memory {
            what: what.clone(),
            err: Box::new(err),
        }
    }

    fn read_shard(
        &self,
        m: &Machine,
        s: &ShardSpec,
        at: usize,
        out: &mut [u8],
    ) -> Result<(), RuntimeError> {
        let es = self.dtype.size() as u64;
        m.read(s.pe_id(), self.va + (s.offset + at) as u64 * es, out)
            .map_err(Self::mem_err(MemoryOp::Read))
    }

    fn write_shard(
        &self,
        m: &mut Machine,
        s: &ShardSpec,
        at: usize,
        src: &[u8],
    ) -> Result<(), RuntimeError> {
        let es = self.dtype.size() as u64;
        m.write(s.pe_id(), self.va + (s.offset + at) as u64 * es, src)
            .map_err(Self::mem_err(MemoryOp::Write))
    }

    /// The host-read barrier: the pending launches that take this tensor
    /// run before the host reads or writes it, and the host waits for them.
    fn settle(&self) -> Result<(), RuntimeError> {
        let bytes = (self.storage * self.dtype.size()) as u64;
        self.shared.settle(self.sip(), self.va, bytes)
    }

    /// The whole tensor as row-major bytes, each element from the first shard holding it.
    pub(super) fn gather_bytes(&self) -> Result<Vec<u8>, RuntimeError> {
        self.settle()?;
        let es = self.dtype.size();
        let (_, cols) = self.dims2();
        let mut out = vec![0u8; self.numel() * es];
        let m = self.shared.machine();
        let mut seen = HashSet::new();
        for s in &self.shards {
            // Blocks of a placement are identical (replicas) or disjoint: read each once.
            if !seen.insert((s.rows.clone(), s.cols.clone())) {
                continue;
            }
            let mut block = vec![0u8; s.len * es];
            self.read_shard(&m, s, 0, &mut block)?;
            let w = s.cols.len() * es;
            for (i, r) in s.rows.clone().enumerate() {
                let at = (r * cols + s.cols.start) * es;
                out[at..at + w].copy_from_slice(&block[i * w..(i + 1) * w]);
            }
        }
        Ok(out)
    }

    /// Writes row-major bytes of the whole tensor into every shard.
    pub(super) fn scatter_bytes(&self, bytes: &[u8]) -> Result<(), RuntimeError> {
        self.settle()?;
        let es = self.dtype.size();
        let (_, cols) = self.dims2();
        let mut m = self.shared.machine();
        for s in &self.shards {
            let w = s.cols.len() * es;
            let mut block = vec![0u8; s.len * es];
            for (i, r) in s.rows.clone().enumerate() {
                let at = (r * cols + s.cols.start) * es;
                block[i * w..(i + 1) * w].copy_from_slice(&bytes[at..at + w]);
            }
            self.write_shard(&mut m, s, 0, &block)?;
        }
        Ok(())
    }

    /// Reads the tensor back into a host array (gathering its shards).
    ///
    /// Fails with [`RuntimeError::DType`] when `T` is not the tensor's type.
    pub fn to_ndarray<T: HostElement>(&self) -> Result<ArrayD<T>, RuntimeError> {
        self.check_dtype::<T>("reading a tensor back")?;
        let es = self.dtype.size();
        let v: Vec<T> = self.gather_bytes()?.chunks_exact(es).map(T::get).collect();
        Ok(ArrayD::from_shape_vec(IxDyn(&self.shape), v).expect("gathered exactly numel elements"))
    }

    /// Reads shard `k` alone back into a host array of its block's shape
    /// (`rows x cols` of the tensor it holds), as the PE holding it sees
    /// it: for a replicated tensor, one replica, where [`Self::to_ndarray`]
    /// reads each block once. Waits for pending work as a read does.
    ///
    /// Fails with [`RuntimeError::DType`] when `T` is not the tensor's
    /// type, and [`RuntimeError::NoSuchShard`] when there is no shard `k`.
    pub fn shard_to_ndarray<T: HostElement>(&self, k: usize) -> Result<ArrayD<T>, RuntimeError> {
        self.check_dtype::<T>("reading a shard back")?;
        let s = self.shards.get(k).ok_or(RuntimeError::NoSuchShard {
            shard: k,
            shards: self.shards.len(),
        })?;
        self.settle()?;
        let es = self.dtype.size();
        let mut block = vec![0u8; s.len * es];
        self.read_shard(&self.shared.machine(), s, 0, &mut block)?;
        let v: Vec<T> = block.chunks_exact(es).map(T::get).collect();
        let shape = match self.shape.len() {
            1 => vec![s.cols.len()],
            _ => vec![s.rows.len(), s.cols.len()],
        };
        Ok(ArrayD::from_shape_vec(IxDyn(&shape), v).expect("a shard holds its block"))
    }

    /// Reads the tensor back as `f32` values, whatever its type (`i32` converted with `as`).
    pub fn to_f32_array(&self) -> Result<ArrayD<f32>, RuntimeError> {
        let es = self.dtype.size();
        let v: Vec<f32> = self
            .gather_bytes()?
            .chunks_exact(es)
            .map(|b| self.dtype.decode(b))
            .collect();
        Ok(ArrayD::from_shape_vec(IxDyn(&self.shape), v).expect("gathered exactly numel elements"))
    }

    /// Copies a host array of the tensor's shape and type into it (scattering
    /// it over the shards; every replica is written).
    pub fn copy_from<T, S, D>(&self, src: &ArrayBase<S, D>) -> Result<(), RuntimeError>
    where
        T: HostElement,
        S: Data<Elem = T>,
        D: Dimension,
    {
        self.check_dtype::<T>("copying a host array into a tensor")?;
        if src.shape() != self.shape.as_slice() {
            return Err(RuntimeError::Shape {
                shape: src.shape().to_vec(),
                kind: TensorShapeError::HostArray {
                    tensor: self.shape.clone(),
                },
            });
        }
        self.scatter_bytes(&array_bytes(src))
    }

    fn check_slice(&self, rows: &Range<usize>, cols: &Range<usize>) -> Result<(), RuntimeError> {
        let (r, c) = self.dims2();
        if rows.start >= rows.end || cols.start >= cols.end || rows.end > r || cols.end > c {
            return Err(RuntimeError::SliceOutOfRange {
                rows: rows.clone(),
                cols: cols.clone(),
                shape: self.shape.clone(),
            });
        }
        Ok(())
    }

    fn cross_shard(&self, rows: &Range<usize>, cols: &Range<usize>) -> RuntimeError {
        let mut touched = Vec::new();
        for s in self.shards.iter().filter(|s| s.meets(rows, cols)) {
            let p = s.pe_id();
            if !touched.contains(&p) {
                touched.push(p);
            }
        }
        RuntimeError::CrossShard {
            rows: rows.clone(),
            cols: cols.clone(),
            shards: touched,
        }
    }

    /// Reads the region `rows x cols` (for a 1-D tensor, `rows` is `0..1`).
    /// The region must lie inside one shard; a region across shards is a
    /// [`RuntimeError::CrossShard`] error naming the shards it touches.
    pub fn slice<T: HostElement>(
        &self,
        rows: Range<usize>,
        cols: Range<usize>,
    ) -> Result<Array2<T>, RuntimeError> {
        self.check_dtype::<T>("reading a slice")?;
        self.check_slice(&rows, &cols)?;
        let s = self
            .shards
            .iter()
            .find(|s| s.holds(&rows, &cols))
            .ok_or_else(|| self.cross_shard(&rows, &cols))?;
        self.settle()?;
        let es = self.dtype.size();
        let w = cols.len();
        let bw = s.cols.len();
        let m = self.shared.machine();
        let mut v = Vec::with_capacity(rows.len() * w);
        let mut row = vec![0u8; w * es];
        for r in rows.clone() {
            let at = (r - s.rows.start) * bw + (cols.start - s.cols.start);
            self.read_shard(&m, s, at, &mut row)?;
            v.extend(row.chunks_exact(es).map(T::get));
        }
        Ok(Array2::from_shape_vec((rows.len(), w), v).expect("read exactly rows x cols elements"))
    }

    /// Writes the region `rows x cols` from a host array of that shape, in
    /// every shard (replica) holding it. The region must lie inside one
    /// shard's block ([`RuntimeError::CrossShard`] otherwise).
    pub fn set_slice<T, S>(
        &self,
        rows: Range<usize>,
        cols: Range<usize>,
        values: &ArrayBase<S, Ix2>,
    ) -> Result<(), RuntimeError>
    where
        T: HostElement,
        S: Data<Elem = T>,
    {
        self.check_dtype::<T>("writing a slice")?;
        self.check_slice(&rows, &cols)?;
        if values.dim() != (rows.len(), cols.len()) {
            return Err(RuntimeError::Shape {
                shape: values.shape().to_vec(),
                kind: TensorShapeError::HostSlice {
                    rows: rows.len(),
                    cols: cols.len(),
                },
            });
        }
        let holders: Vec<&ShardSpec> = self
            .shards
            .iter()
            .filter(|s| s.holds(&rows, &cols))
            .collect();
        if holders.is_empty() {
            return Err(self.cross_shard(&rows, &cols));
        }
        self.settle()?;
        let es = self.dtype.size();
        let w = cols.len();
        let mut m = self.shared.machine();
        let mut row = vec![0u8; w * es];
        for s in holders {
            let bw = s.cols.len();
            for (i, r) in rows.clone().enumerate() {
                for (j, v) in values.row(i).iter().enumerate() {
                    v.put(&mut row[j * es..]);
                }
                let at = (r - s.rows.start) * bw + (cols.start - s.cols.start);
                self.write_shard(&mut m, s, at, &row)?;
            }
        }
        Ok(())
    }

    /// Fills the region `rows x cols` with one value (same rules as [`DeviceTensor::set_slice`]).
    pub fn fill_slice<T: HostElement>(
        &self,
        rows: Range<usize>,
        cols: Range<usize>,
        value: T,
    ) -> Result<(), RuntimeError> {
        let a = Array2::from_elem((rows.len(), cols.len()), value);
        self.set_slice(rows, cols, &a)
    }

    /// Frees the tensor: its virtual range on every PE and its pages.
    pub fn free(mut self) -> Result<(), RuntimeError> {
        self.settle()?;
        self.live = false;
        self.shared
            .machine()
            .free(self.va)
            .map_err(Self::mem_err(MemoryOp::Free))
    }
}

impl Drop for DeviceTensor {
    fn drop(&mut self) {
        if self.live {
            // Dropping cannot report errors: a pending launch that fails
            // keeps its error for its handle. The buffer is known to the machine.
            let _ = self.settle();
            let _ = self.shared.machine().free(self.va);
        }
    }
}

/// Checks a shape the runtime can place: 1-D or 2-D, no zero dimension.
pub(super) fn check_shape(shape: &[usize]) -> Result<(), RuntimeError> {
    if shape.is_empty() || shape.len() > 2 {
        return Err(RuntimeError::Shape {
            shape: shape.to_vec(),
            kind: TensorShapeError::Rank,
        });
    }
    if shape.contains(&0) {
        return Err(RuntimeError::Shape {
            shape: shape.to_vec(),
            kind: TensorShapeError::Empty,
        });
    }
    Ok(())
}

/// The host data of an array, as little-endian bytes in logical order.
pub(super) fn array_bytes<T, S, D>(a: &ArrayBase<S, D>) -> Vec<u8>
where
    T: HostElement,
    S: Data<Elem = T>,
    D: Dimension,
{
    let es = T::DTYPE.size();
    let mut bytes = vec![0u8; a.len() * es];
    for (i, v) in a.iter().enumerate() {
        v.put(&mut bytes[i * es..]);
    }
    bytes
}
