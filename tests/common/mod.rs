//! What several integration tests share: one PE of `tiny` with its memory.
#![allow(dead_code)]

pub mod streams;

use kernbench::core::machine::Buffer;
use kernbench::prelude::*;
use kernbench::tl::Kernel;

/// One PE of `tiny`, to fill buffers on, run a kernel on and read back.
pub struct Bench {
    pub m: Machine,
    pub pe: PeId,
}

impl Bench {
    pub fn new() -> Bench {
        let topo = Topology::builtin("tiny").unwrap();
        let pe = topo.pes().next().unwrap();
        Bench {
            m: Machine::new(topo).unwrap(),
            pe,
        }
    }

    /// A buffer of `dtype` on the PE holding `values`.
    pub fn buf(&mut self, dtype: DType, values: &[f32]) -> Buffer {
        let b = self.m.alloc(dtype, values.len(), &[self.pe]).unwrap();
        self.m.write_buffer(&b, values).unwrap();
        b
    }

    /// Runs `k` on the PE.
    pub fn run(&mut self, k: &dyn Kernel, args: KernelArgs) {
        simulate(&mut self.m, &Launch::new(k, args, vec![self.pe])).unwrap();
    }

    /// A buffer's values.
    pub fn read(&self, b: &Buffer) -> Vec<f32> {
        self.m.read_buffer(b).unwrap()
    }
}

/// A buffer of `n` `f32` held whole in `home`'s HBM slice and mapped on
/// every PE of `pes`: `home` reads it locally, the others over the fabric.
pub fn homed(m: &mut Machine, n: usize, pes: &[PeId], home: PeId) -> Buffer {
    use kernbench::core::machine::Shard;
    let mut shards = vec![Shard {
        pe: home,
        offset: 0,
        len: n,
    }];
    shards.extend(pes.iter().filter(|&&p| p != home).map(|&pe| Shard {
        pe,
        offset: n,
        len: 0,
    }));
    m.alloc_shards(DType::F32, n, shards).unwrap()
}

/// A timing-only launch (data off) of `vector_add` over `bufs` (x, y, z): `n`
/// elements, `block` an instance, on `pes`.
pub fn vector_add_on(bufs: &[Buffer], n: usize, block: usize, pes: Vec<PeId>) -> Launch<'static> {
    let args = KernelArgs::new()
        .with("x", bufs[0].ptr())
        .with("y", bufs[1].ptr())
        .with("z", bufs[2].ptr())
        .int("n", n as i64)
        .int("block", block as i64);
    Launch::new(&kernbench::kernels::vector_add, args, pes).data(false)
}
