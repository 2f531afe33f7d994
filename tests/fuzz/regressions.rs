//! Failures the fuzz tests found, each with the smallest input that showed
//! it, kept so they stay fixed.

use super::kernels::{self, At, KernelCase, Map, Op};
use kernbench::core::sim::FabricModel;
use kernbench::core::DType;

fn must_pass(r: Result<&'static str, String>) {
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// A load at element 2^61 of an f32 buffer: its byte offset overflowed an
/// i64 while the region's addresses were worked out (a panic); the builder
/// now refuses a region outside the 64-bit address space.
#[test]
fn load_far_past_the_address_space() {
    let c = KernelCase {
        pes: 1,
        map: Map::Ring,
        buffers: vec![(DType::F32, 1)],
        ops: vec![Op::Load {
            buf: 0,
            at: At::Abs(1 << 61),
            shape: vec![1],
        }],
        data: false,
        fabric: FabricModel::Messages,
    };
    must_pass(kernels::check(&c));
}

/// A streamed operand one element before the buffer (offset -1): the
/// lowering turned the negative offset into a byte address by a multiply
/// that overflowed (a panic); it now names the address below the buffer,
/// which the run refuses as a memory error.
#[test]
fn stream_one_element_before_the_buffer() {
    let c = KernelCase {
        pes: 1,
        map: Map::Ring,
        buffers: vec![(DType::F32, 1)],
        ops: vec![Op::Stream {
            buf: 0,
            at: At::Own(-1),
            shape: [1, 1],
        }],
        data: true,
        fabric: FabricModel::Messages,
    };
    must_pass(kernels::check(&c));
}

/// A filled tile of 4 x 11 x 2^40 f32 (176 TB): the lowering cut it into
/// TCM-sized pieces, billions of them, before the TCM plan could refuse it
/// (a hang, then memory exhausted); a tile larger than the TCM is now
/// refused where it is lowered.
#[test]
fn tile_larger_than_the_tcm() {
    let c = KernelCase {
        pes: 1,
        map: Map::None,
        buffers: vec![(DType::F32, 1)],
        ops: vec![Op::Full {
            dtype: DType::F32,
            shape: vec![4, 11, 1 << 40],
            value: 1.0,
        }],
        data: false,
        fabric: FabricModel::Messages,
    };
    must_pass(kernels::check(&c));
}

/// A block of a 1 x 1 tensor loaded with the 3D shape [1, 1, 2]: the data
/// execution took a block's shape for (rows, cols) and read too few
/// elements for the shape (a panic); the builder now refuses a block
/// region that is not 2D.
#[test]
fn block_with_a_3d_shape() {
    let c = KernelCase {
        pes: 1,
        map: Map::Ring,
        buffers: vec![(DType::F32, 2218)],
        ops: vec![Op::Load {
            buf: 0,
            at: At::Block {
                tensor: [1, 1],
                origin: [0, 0],
            },
            shape: vec![1, 1, 2],
        }],
        data: true,
        fabric: FabricModel::Messages,
    };
    must_pass(kernels::check(&c));
}

/// `run hierarchical_allreduce --topology tiny --size 64 --pes 8
/// --verify-data`: 8 PEs are two whole cubes of tiny's four, which the
/// hierarchical map accepts, but the kernel was told every cube of the SIP
/// took part, so its across-cube ring did not match the map's and every
/// element came out wrong; a launch smaller than a SIP now passes the
/// cubes it covers.
#[test]
fn hierarchical_allreduce_on_part_of_a_sip() {
    for pes in ["4", "8", "12"] {
        let args = [
            "kernbench",
            "run",
            "hierarchical_allreduce",
            "--topology",
            "tiny",
            "--size",
            "64",
            "--pes",
            pes,
            "--verify-data",
        ];
        if let Err(e) = kernbench::cli::run_args(args, &mut Vec::new()) {
            panic!("--pes {pes}: {e}");
        }
    }
}

/// A streamed operand of 15 x 2^40 f32 that no dot reads, with data on: the
/// data execution made room for the whole region (66 TB) before it read
/// it, and the allocation aborted the process; the region's runs are now
/// checked against the buffers first, and the run fails with a memory error.
#[test]
fn huge_streamed_region_outside_the_buffers() {
    let c = KernelCase {
        pes: 1,
        map: Map::Ring,
        buffers: vec![(DType::F32, 64)],
        ops: vec![Op::Stream {
            buf: 0,
            at: At::Own(0),
            shape: [15, 1 << 40],
        }],
        data: true,
        fabric: FabricModel::Messages,
    };
    match kernels::check(&c) {
        Ok(outcome) => assert_eq!(outcome, "memory error"),
        Err(e) => panic!("{e}"),
    }
}

/// Two PEs load a 2^20 x 2^40 f32 region (far outside the buffer), take its
/// softmax and cast that: each tile's bytes fit in 64 bits, but the memory
/// estimate added the live ones up past u64 (a panic); its sums now
/// saturate, and the run fails on the first tile that cannot fit in TCM.
#[test]
fn memory_estimate_past_u64() {
    let c = KernelCase {
        pes: 2,
        map: Map::Ring,
        buffers: vec![(DType::F32, 1)],
        ops: vec![
            Op::Load {
                buf: 0,
                at: At::Own(0),
                shape: vec![1 << 20, 1 << 40],
            },
            Op::Softmax {
                x: kernels::Pick::Fit(0),
                axis: kernels::Pick::Fit(0),
            },
            Op::Cast {
                x: kernels::Pick::Fit(1),
                to: DType::F32,
            },
        ],
        data: false,
        fabric: FabricModel::Messages,
    };
    match kernels::check(&c) {
        Ok(outcome) => assert_eq!(outcome, "TCM overflow"),
        Err(e) => panic!("{e}"),
    }
}

/// The shipped registry with `all_gather`'s topology copied over from
/// `hierarchical_allreduce`: it loaded, and the ring all-gather ran on the
/// hierarchical map, whose `E`/`W` ring only spans a cube, so 768 of 1024
/// elements came out wrong. A kernel must now run on the map (and the
/// collective) it is written for.
#[test]
fn ring_kernel_on_the_hierarchical_map() {
    let text = super::yaml::CCL_YAML.replacen(
        "  all_gather:\n    kernel: all_gather\n    collective: all_gather\n    topology: ring\n",
        "  all_gather:\n    kernel: all_gather\n    collective: all_gather\n    topology: hierarchical\n",
        1,
    );
    assert_ne!(
        text,
        super::yaml::CCL_YAML,
        "the shipped all_gather entry moved"
    );
    // The entry's `topology:`, three lines under its name (1-based).
    let line = text
        .lines()
        .position(|l| l == "  all_gather:")
        .expect("the entry is there")
        + 4;
    let c = super::yaml::FileCase {
        base: "configs/ccl.yaml",
        edits: vec![],
        text_edits: vec![],
        text,
    };
    assert_eq!(super::yaml::check_registry(&c), Ok("bad entry"));
    match kernbench::ccl::Registry::from_yaml(&c.text, "ccl.yaml") {
        Err(kernbench::ccl::registry::RegistryError::Entry { name, line: l, .. }) => {
            assert_eq!(name, "all_gather");
            assert_eq!(l, line);
        }
        other => panic!("{other:?}"),
    }
}
