//! The machine's memory: per-PE virtual address spaces, distributed buffers
//! and their page tables, physical HBM slices, and the bytes they hold.

use crate::addr::{
    first_common_fit, AddrError, AddressLayout, Mmu, PhysAddr, RangeAllocator, Region, VaSpace,
    PAGE_2M, PAGE_4K,
};
use crate::topology::Topology;
use crate::{DType, PeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// A memory error: bad addresses, exhausted memory, accesses outside buffers.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MemError {
    /// An address-level error.
    #[error(transparent)]
    Addr(#[from] AddrError),
    /// A PE that is not in the machine.
    #[error("PE {0} is not part of this machine")]
    NoSuchPe(PeId),
    /// An access outside every buffer a PE can see.
    #[error(
        "PE {pe} accesses {bytes} B at virtual address {va:#x}, outside every buffer mapped on it"
    )]
    Unmapped {
        /// The PE.
        pe: PeId,
        /// Virtual address.
        va: u64,
        /// Bytes.
        bytes: u64,
    },
    /// An access through a kernel parameter outside every buffer a PE can
    /// see: [`MemError::Unmapped`] with what the parameter points to.
    #[error(
        "PE {pe} accesses {bytes} B at virtual address {va:#x} through `{param}`, outside every buffer mapped on it: {}",
        ParamWhy(.param, .pe, .why)
    )]
    OutsideParam {
        /// The PE.
        pe: PeId,
        /// Virtual address.
        va: u64,
        /// Bytes.
        bytes: u64,
        /// The kernel parameter the access goes through.
        param: String,
        /// Where the parameter's buffer is and where it is mapped (boxed:
        /// it holds the buffer's figures).
        why: Box<ParamBuffer>,
    },
    /// A buffer with no PEs or no elements.
    #[error("a buffer needs at least one element and one PE")]
    EmptyBuffer,
    /// An access whose values a data run cannot hold in host memory.
    #[error(
        "executing this access with data needs {need} B of host memory for its {elems} elements, more than the {available} B available; run it without data (timing is the same), or access it in smaller tiles"
    )]
    DataTooLarge {
        /// Elements of the region.
        elems: u64,
        /// Host bytes its values and byte runs need.
        need: u64,
        /// Host memory available when the run began.
        available: u64,
    },
    /// Host data of the wrong length.
    #[error("host data has {got} elements, the buffer {want}")]
    Length {
        /// Given.
        got: usize,
        /// Expected.
        want: usize,
    },
}

/// One PE's part of a distributed buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The PE that holds it in its HBM slice.
    pub pe: PeId,
    /// First element.
    pub offset: usize,
    /// Elements.
    pub len: usize,
}

/// A buffer with one virtual address on every PE of its placement, its pages
/// in the HBM slices of the PEs that own them.
#[derive(Clone, Debug)]
pub struct Buffer {
    /// The virtual address (the same on every PE that maps it).
    pub va: u64,
    /// Element type.
    pub dtype: DType,
    /// Elements.
    pub len: usize,
    /// Shards in element order.
    pub shards: Vec<Shard>,
    id: u64,
    mmu: Mmu,
    phys: Vec<(PeId, u64, u64)>,
}

impl Buffer {
    /// The buffer as a pointer argument.
    pub fn ptr(&self) -> crate::ir::ArgValue {
        crate::ir::ArgValue::Ptr {
            va: self.va,
            dtype: self.dtype,
            len: self.len,
        }
    }

    /// The buffer as a row-major `rows x cols` tensor argument.
    pub fn tensor(&self, rows: usize, cols: usize) -> Result<crate::ir::ArgValue, MemError> {
        if rows * cols != self.len {
            return Err(MemError::Length {
                got: rows * cols,
                want: self.len,
            });
        }
        Ok(crate::ir::ArgValue::Tensor {
            va: self.va,
            dtype: self.dtype,
            shape: [rows, cols],
        })
    }

    /// The buffer as a row-major `rows x cols` tensor, for a kernel's typed
    /// argument builder (`k::args().a(buf.view(m, k)?)`).
    pub fn view(&self, rows: usize, cols: usize) -> Result<TensorRef, MemError> {
        match self.tensor(rows, cols)? {
            crate::ir::ArgValue::Tensor { va, dtype, shape } => Ok(TensorRef { va, dtype, shape }),
            _ => unreachable!("`Buffer::tensor` gives a tensor"),
        }
    }

    /// Bytes.
    pub fn bytes(&self) -> u64 {
        (self.len * self.dtype.size()) as u64
    }
}

/// A buffer viewed as a row-major 2D tensor of a shape that fits it
/// ([`Buffer::view`]): what a typed argument builder takes for a tensor parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorRef {
    va: u64,
    dtype: DType,
    shape: [usize; 2],
}

impl TensorRef {
    /// Its shape.
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }
}

impl From<TensorRef> for crate::ir::ArgValue {
    fn from(t: TensorRef) -> Self {
        crate::ir::ArgValue::Tensor {
            va: t.va,
            dtype: t.dtype,
            shape: t.shape,
        }
    }
}

struct PeMem {
    va: VaSpace,
    hbm: RangeAllocator,
    /// The buffers this PE maps: first VA -> (end VA, buffer id). A PE's
    /// buffers never overlap; PEs of different placements may reuse a VA.
    bufs: BTreeMap<u64, (u64, u64)>,
}

/// Memory of the whole machine.
pub struct Machine {
    topo: Topology,
    layout: AddressLayout,
    pes: Vec<PeMem>,
    buffers: BTreeMap<u64, Buffer>,
    next_id: u64,
    data: HashMap<u64, Box<[u8]>>,
}

const DATA_PAGE: u64 = 4096;

impl Machine {
    /// A machine for a topology, with empty memory.
    pub fn new(topo: Topology) -> Result<Self, MemError> {
        let spec = topo.pe_spec();
        let mem = topo.memory();
        let layout = AddressLayout::new(
            topo.pes_per_cube(),
            spec.hbm_slice_bytes,
            mem.mcpu_bytes,
            mem.sram_bytes,
        )?;
        let mut pes = Vec::with_capacity(topo.pe_count());
        for pe in topo.pes() {
            let base = layout.pe_hbm(pe)?.raw();
            pes.push(PeMem {
                va: VaSpace::new(),
                hbm: RangeAllocator::new(base, spec.hbm_slice_bytes)?,
                bufs: BTreeMap::new(),
            });
        }
        Ok(Machine {
            topo,
            layout,
            pes,
            buffers: BTreeMap::new(),
            next_id: 0,
            data: HashMap::new(),
        })
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// The physical address layout.
    pub fn layout(&self) -> &AddressLayout {
        &self.layout
    }

    /// A dense index of a PE of this machine (internal to the simulator).
    pub fn pe_index(&self, pe: PeId) -> Result<usize, MemError> {
        if !self.topo.contains(pe) {
            return Err(MemError::NoSuchPe(pe));
        }
        let cubes = self.topo.cubes_per_sip() as usize;
        let per = self.topo.pes_per_cube() as usize;
        Ok((pe.sip as usize * cubes + pe.cube as usize) * per + pe.pe as usize)
    }

    /// Allocates a buffer of `len` elements split into equal contiguous shards
    /// over `pes` (the first shards one element longer when it does not divide),
    /// mapped at one virtual address on every PE of `pes`.
    pub fn alloc(&mut self, dtype: DType, len: usize, pes: &[PeId]) -> Result<Buffer, MemError> {
        if len == 0 || pes.is_empty() {
            return Err(MemError::EmptyBuffer);
        }
        let n = pes.len();
        let mut shards = Vec::with_capacity(n);
        let mut off = 0;
        for (i, pe) in pes.iter().enumerate() {
            let l = len / n + usize::from(i < len % n);
            shards.push(Shard {
                pe: *pe,
                offset: off,
                len: l,
            });
            off += l;
        }
        self.alloc_shards(dtype, len, shards)
    }

    /// Allocates a buffer with explicit shards (in element order, covering `0..len`).
    pub fn alloc_shards(
        &mut self,
        dtype: DType,
        len: usize,
        shards: Vec<Shard>,
    ) -> Result<Buffer, MemError> {
        let es = dtype.size() as u64;
        let bytes = len as u64 * es;
        let min_shard = shards
            .iter()
            .filter(|s| s.len > 0)
            .map(|s| s.len as u64 * es)
            .min()
            .unwrap_or(bytes);
        let page = if min_shard >= PAGE_2M {
            PAGE_2M
        } else {
            PAGE_4K
        };
        let mapped = bytes.div_ceil(page) * page;
        let idx: Vec<usize> = shards
            .iter()
            .map(|s| self.pe_index(s.pe))
            .collect::<Result<_, _>>()?;
        let va = {
            let spaces: Vec<&VaSpace> = idx.iter().map(|&i| &self.pes[i].va).collect();
            first_common_fit(&spaces, mapped).ok_or(AddrError::OutOfSpace {
                size: mapped,
                align: page,
                free: 0,
            })?
        };
        for &i in &idx {
            self.pes[i].va.alloc_at(va, mapped)?;
        }
        // Each shard is one segment of the buffer's mapping, backed by its
        // owner's HBM slice (page-rounded); shard boundaries need not be pages.
        let mut mmu = Mmu::new();
        let mut phys = Vec::new();
        for s in shards.iter().filter(|s| s.len > 0) {
            let pi = self.pe_index(s.pe)?;
            let bytes = s.len as u64 * es;
            let pa = self.pes[pi].hbm.alloc(bytes.div_ceil(page) * page, page)?;
            mmu.map_segment(va + s.offset as u64 * es, PhysAddr::from_raw(pa)?, bytes)?;
            phys.push((s.pe, pa, bytes));
        }
        let id = self.next_id;
        self.next_id += 1;
        for &i in &idx {
            self.pes[i].bufs.insert(va, (va + len as u64 * es, id));
        }
        let buf = Buffer {
            va,
            dtype,
            len,
            shards,
            id,
            mmu,
            phys,
        };
        self.buffers.insert(id, buf.clone());
        Ok(buf)
    }

    /// Frees the buffer at `va`. Buffers on disjoint sets of PEs may share a
    /// virtual address; then this is an error and [`Machine::free_buffer`] says which.
    pub fn free(&mut self, va: u64) -> Result<(), MemError> {
        let mut at = self.buffers.values().filter(|b| b.va == va);
        let (Some(first), None) = (at.next(), at.next()) else {
            return Err(AddrError::UnknownAllocation { addr: va }.into());
        };
        let id = first.id;
        self.free_id(id)
    }

    /// Frees a buffer: its virtual range on every PE and its physical pages.
    pub fn free_buffer(&mut self, buf: &Buffer) -> Result<(), MemError> {
        self.free_id(buf.id)
    }

    fn free_id(&mut self, id: u64) -> Result<(), MemError> {
        let buf = self
            .buffers
            .remove(&id)
            .ok_or(AddrError::UnknownAllocation { addr: id })?;
        let va = buf.va;
        for s in &buf.shards {
            let i = self.pe_index(s.pe)?;
            if self.pes[i].bufs.remove(&va).is_some() {
                self.pes[i].va.free(va)?;
            }
        }
        for (pe, pa, run) in &buf.phys {
            let i = self.pe_index(*pe)?;
            self.pes[i].hbm.free(*pa)?;
            let mut p = *pa;
            while p < pa + run {
                self.data.remove(&(p / DATA_PAGE));
                p += DATA_PAGE;
            }
        }
        Ok(())
    }

    /// A buffer that starts at a virtual address (the first allocated, when
    /// buffers on disjoint PEs share it).
    pub fn buffer(&self, va: u64) -> Option<&Buffer> {
        self.buffers.values().find(|b| b.va == va)
    }

    /// Physically contiguous pieces of `bytes` at `va` as seen from `pe`.
    pub fn translate(
        &self,
        pe: PeId,
        va: u64,
        bytes: u64,
    ) -> Result<crate::addr::PhysRuns, MemError> {
        let unmapped = || MemError::Unmapped { pe, va, bytes };
        let i = self.pe_index(pe)?;
        let (_, &(end, id)) = self.pes[i]
            .bufs
            .range(..=va)
            .next_back()
            .ok_or_else(unmapped)?;
        if va.checked_add(bytes).is_none_or(|e| e > end) {
            return Err(unmapped());
        }
        Ok(self.buffers[&id].mmu.translate_range(va, bytes)?)
    }

    /// The buffer that holds the byte at `va` as seen from `pe` (an id unique
    /// over the machine's life), or `None` when no buffer mapped on `pe` does.
    /// One buffer is the same memory from every PE that maps it.
    pub(crate) fn buffer_id_at(&self, pe: PeId, va: u64) -> Option<u64> {
        let i = self.pe_index(pe).ok()?;
        let (_, &(end, id)) = self.pes[i].bufs.range(..=va).next_back()?;
        (va < end).then_some(id)
    }

    /// [`MemError::Unmapped`] of an access through kernel parameter region
    /// `r`, told as [`MemError::OutsideParam`]: the parameter, its buffer
    /// and the PEs that buffer is mapped on. Other errors come back as they are.
    pub fn through_param(&self, err: MemError, r: &crate::ir::MemRef) -> MemError {
        let MemError::Unmapped { pe, va, bytes } = err else {
            return err;
        };
        let name = &r.name;
        let base = r.base_va;
        let at_base: Vec<&Buffer> = self.buffers.values().filter(|b| b.va == base).collect();
        let pes_of = |b: &Buffer| -> Vec<PeId> {
            let mut v: Vec<PeId> = b.shards.iter().map(|s| s.pe).collect();
            v.sort();
            v.dedup();
            v
        };
        let why = match at_base.iter().find(|b| pes_of(b).contains(&pe)) {
            Some(b) => {
                let start = i128::from(va) - i128::from(base);
                ParamBuffer::Outside {
                    len: b.len,
                    dtype: b.dtype,
                    bytes: b.bytes(),
                    va: base,
                    pes: pes_of(b),
                    start,
                    end: start + i128::from(bytes),
                }
            }
            None if !at_base.is_empty() => {
                let mut all: Vec<PeId> = at_base.iter().flat_map(|b| pes_of(b)).collect();
                all.sort();
                all.dedup();
                let b = at_base[0];
                ParamBuffer::NotOnPe {
                    len: b.len,
                    dtype: b.dtype,
                    va: base,
                    pes: all,
                }
            }
            None => ParamBuffer::NoBuffer { va: base },
        };
        MemError::OutsideParam {
            pe,
            va,
            bytes,
            param: name.to_string(),
            why: Box::new(why),
        }
    }

    /// Which memory a physical address is in.
    pub fn classify(&self, pa: PhysAddr) -> Result<Region, MemError> {
        Ok(self.layout.classify(pa)?)
    }

    fn page_mut(&mut self, pa: u64) -> &mut [u8] {
        self.data
            .entry(pa / DATA_PAGE)
            .or_insert_with(|| vec![0u8; DATA_PAGE as usize].into_boxed_slice())
    }

    /// Reads physical bytes (unwritten memory reads as zeros).
    pub fn read_phys(&self, pa: u64, out: &mut [u8]) {
        let mut done = 0usize;
        while done < out.len() {
            let a = pa + done as u64;
            let off = (a % DATA_PAGE) as usize;
            let n = (DATA_PAGE as usize - off).min(out.len() - done);
            match self.data.get(&(a / DATA_PAGE)) {
                Some(p) => out[done..done + n].copy_from_slice(&p[off..off + n]),
                None => out[done..done + n].fill(0),
            }
            done += n;
        }
    }

    /// Writes physical bytes.
    pub fn write_phys(&mut self, pa: u64, src: &[u8]) {
        let mut done = 0usize;
        while done < src.len() {
            let a = pa + done as u64;
            let off = (a % DATA_PAGE) as usize;
            let n = (DATA_PAGE as usize - off).min(src.len() - done);
            self.page_mut(a)[off..off + n].copy_from_slice(&src[done..done + n]);
            done += n;
        }
    }

    /// Reads `bytes` at `va` as seen from `pe`.
    pub fn read(&self, pe: PeId, va: u64, out: &mut [u8]) -> Result<(), MemError> {
        let mut at = 0usize;
        for (pa, n) in self.translate(pe, va, out.len() as u64)? {
            self.read_phys(pa.raw(), &mut out[at..at + n as usize]);
            at += n as usize;
        }
        Ok(())
    }

    /// Writes bytes at `va` as seen from `pe`.
    pub fn write(&mut self, pe: PeId, va: u64, src: &[u8]) -> Result<(), MemError> {
        let mut at = 0usize;
        for (pa, n) in self.translate(pe, va, src.len() as u64)? {
            self.write_phys(pa.raw(), &src[at..at + n as usize]);
            at += n as usize;
        }
        Ok(())
    }

    /// Appends the `bytes / dtype.size()` values at `va` as seen from `pe`,
    /// decoded to `f32`, to `out`. Memory that was never written reads as zeros.
    pub fn read_values(
        &self,
        pe: PeId,
        va: u64,
        bytes: u64,
        dtype: crate::DType,
        out: &mut Vec<f32>,
    ) -> Result<(), MemError> {
        static ZEROS: [u8; DATA_PAGE as usize] = [0; DATA_PAGE as usize];
        let runs = self.translate(pe, va, bytes)?;
        let es = dtype.size() as u64;
        if runs.iter().any(|(pa, _)| pa.raw() % es != 0) {
            // An element may straddle two pages: go through a copy.
            let mut buf = vec![0u8; bytes as usize];
            self.read(pe, va, &mut buf)?;
            dtype.decode_into(&buf, out);
            return Ok(());
        }
        // Whole elements on every page: decode in place.
        out.reserve((bytes / es) as usize);
        for (pa, n) in runs {
            let (mut a, end) = (pa.raw(), pa.raw() + n);
            while a < end {
                let off = (a % DATA_PAGE) as usize;
                let k = (DATA_PAGE as usize - off).min((end - a) as usize);
                match self.data.get(&(a / DATA_PAGE)) {
                    Some(p) => dtype.decode_into(&p[off..off + k], out),
                    None => dtype.decode_into(&ZEROS[..k], out),
                }
                a += k as u64;
            }
        }
        Ok(())
    }

    /// Writes `values`, rounded to and encoded as `dtype`, at `va` as seen from `pe`.
    pub fn write_values(
        &mut self,
        pe: PeId,
        va: u64,
        dtype: crate::DType,
        values: &[f32],
    ) -> Result<(), MemError> {
        let es = dtype.size();
        let runs = self.translate(pe, va, (values.len() * es) as u64)?;
        if runs.iter().any(|(pa, _)| pa.raw() % es as u64 != 0) {
            let mut buf = vec![0u8; values.len() * es];
            dtype.encode_slice(values, &mut buf);
            return self.write(pe, va, &buf);
        }
        let mut at = 0usize;
        for (pa, n) in runs {
            let (mut a, end) = (pa.raw(), pa.raw() + n);
            while a < end {
                let off = (a % DATA_PAGE) as usize;
                let k = (DATA_PAGE as usize - off).min((end - a) as usize);
                let e = k / es;
                dtype.encode_slice(&values[at..at + e], &mut self.page_mut(a)[off..off + k]);
                at += e;
                a += k as u64;
            }
        }
        Ok(())
    }

    /// Writes host values (rounded to the buffer's type) into a buffer.
    pub fn write_buffer(&mut self, buf: &Buffer, values: &[f32]) -> Result<(), MemError> {
        if values.len() != buf.len {
            return Err(MemError::Length {
                got: values.len(),
                want: buf.len,
            });
        }
        self.write_buffer_range(buf, 0, values)
    }

    /// Writes `values` to elements `from..from + values.len()` of a buffer.
    pub fn write_buffer_range(
        &mut self,
        buf: &Buffer,
        from: usize,
        values: &[f32],
    ) -> Result<(), MemError> {
        if from + values.len() > buf.len {
            return Err(MemError::Length {
                got: from + values.len(),
                want: buf.len,
            });
        }
        let es = buf.dtype.size();
        let owner = buf.shards[0].pe;
        self.write_values(owner, buf.va + (from * es) as u64, buf.dtype, values)
    }

    /// Bytes of device memory written so far (held by the host process).
    pub fn resident_bytes(&self) -> u64 {
        self.data.len() as u64 * DATA_PAGE
    }

    /// Reads a buffer back as f32 values.
    pub fn read_buffer(&self, buf: &Buffer) -> Result<Vec<f32>, MemError> {
        self.read_buffer_range(buf, 0, buf.len)
    }

    /// Elements `from..from + len` of a buffer, decoded to `f32` (a part of
    /// a large buffer, without holding all of it twice).
    pub fn read_buffer_range(
        &self,
        buf: &Buffer,
        from: usize,
        len: usize,
    ) -> Result<Vec<f32>, MemError> {
        let es = buf.dtype.size();
        let mut out = Vec::with_capacity(len);
        let va = buf.va + (from * es) as u64;
        self.read_values(buf.shards[0].pe, va, (len * es) as u64, buf.dtype, &mut out)?;
        Ok(out)
    }
}

/// What a kernel parameter points to, when an access through it falls
/// outside every buffer of its PE (see [`MemError::OutsideParam`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamBuffer {
    /// A buffer mapped on the PE, whose bytes the access leaves.
    Outside {
        /// The buffer's elements.
        len: usize,
        /// Their type.
        dtype: DType,
        /// The buffer's bytes.
        bytes: u64,
        /// Its virtual address.
        va: u64,
        /// The PEs it is mapped on.
        pes: Vec<PeId>,
        /// The first byte the access covers, counted from the buffer's
        /// start (negative: before it).
        start: i128,
        /// One past the last byte the access covers.
        end: i128,
    },
    /// A buffer mapped on other PEs only.
    NotOnPe {
        /// The buffer's elements.
        len: usize,
        /// Their type.
        dtype: DType,
        /// Its virtual address.
        va: u64,
        /// The PEs the buffers at that address are mapped on.
        pes: Vec<PeId>,
    },
    /// No buffer starts at the address.
    NoBuffer {
        /// The address the parameter points at.
        va: u64,
    },
}

/// A [`ParamBuffer`] of parameter `.0` accessed on PE `.1`, in words.
struct ParamWhy<'a>(&'a str, &'a PeId, &'a ParamBuffer);

impl fmt::Display for ParamWhy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, pe) = (self.0, self.1);
        match self.2 {
            ParamBuffer::Outside {
                len,
                dtype,
                bytes,
                va,
                pes,
                start,
                end,
            } => write!(
                f,
                "`{name}` is a buffer of {len} {dtype} ({bytes} B at {va:#x}) mapped on {}; \
                 the access covers its bytes {start}..{end}, {} it",
                pe_list(pes),
                if *start < 0 {
                    "before the start of"
                } else {
                    "past the end of"
                }
            ),
            ParamBuffer::NotOnPe {
                len,
                dtype,
                va,
                pes,
            } => write!(
                f,
                "`{name}` is a buffer of {len} {dtype} at {va:#x} mapped on {}, not on PE {pe}; \
                 launch on the PEs that map it, or allocate it on PE {pe} too",
                pe_list(pes)
            ),
            ParamBuffer::NoBuffer { va } => write!(
                f,
                "`{name}` points at {va:#x}, where no buffer of this machine starts; \
                 pass a buffer allocated on the launch's PEs"
            ),
        }
    }
}

/// PEs as `PE (0,0,0)` or `PEs (0,0,0), (0,0,1)`, the first eight of a longer list.
fn pe_list(pes: &[PeId]) -> String {
    let shown: Vec<String> = pes.iter().take(8).map(|p| p.to_string()).collect();
    let more = if pes.len() > 8 {
        format!(" and {} more", pes.len() - 8)
    } else {
        String::new()
    };
    let word = if pes.len() == 1 { "PE" } else { "PEs" };
    format!("{word} {}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_on_disjoint_pes_may_share_a_virtual_address() {
        let mut m = Machine::new(Topology::embedded_default()).unwrap();
        let (p, q) = (PeId::new(0, 0, 0), PeId::new(1, 0, 0));
        let a = m.alloc(DType::F32, 16, &[p]).unwrap();
        let b = m.alloc(DType::F32, 16, &[q]).unwrap();
        assert_eq!(a.va, b.va, "each PE has its own VA space");
        m.write_buffer(&a, &[1.0; 16]).unwrap();
        m.write_buffer(&b, &[2.0; 16]).unwrap();
        assert_eq!(m.read_buffer(&a).unwrap(), vec![1.0; 16]);
        assert_eq!(m.read_buffer(&b).unwrap(), vec![2.0; 16]);
        assert!(m.free(a.va).is_err(), "ambiguous without the buffer");
        m.free_buffer(&a).unwrap();
        assert_eq!(m.read_buffer(&b).unwrap(), vec![2.0; 16]);
        assert!(m.translate(p, a.va, 4).is_err());
        m.free(b.va).unwrap();
    }

    #[test]
    fn shards_live_in_their_owners_hbm() {
        let mut m = Machine::new(Topology::embedded_default()).unwrap();
        let pes: Vec<PeId> = (0..8).map(|p| PeId::new(0, 0, p)).collect();
        let buf = m.alloc(DType::F16, 8 * 1000, &pes).unwrap();
        for (k, pe) in pes.iter().enumerate() {
            let va = buf.va + (k * 1000 * 2) as u64;
            let pieces = m.translate(*pe, va, 2000).unwrap();
            assert_eq!(pieces.len(), 1);
            assert!(
                matches!(m.classify(pieces[0].0).unwrap(), Region::PeHbm { pe: owner, .. } if owner == *pe)
            );
        }
        assert!(
            m.translate(PeId::new(0, 1, 0), buf.va, 4).is_err(),
            "not mapped on other PEs"
        );
    }
}
