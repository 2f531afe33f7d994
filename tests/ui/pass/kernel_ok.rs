use kernbench_tl::prelude::*;

/// Each PE sends its slice east and stores what arrives from the west.
#[kernel]
pub fn hello_send(t: Ptr<f16>, n_elem: usize, #[constexpr] block: usize) {
    let rank = tl::program_id(1) * tl::num_programs(0) + tl::program_id(0);
    for b in 0..n_elem / block {
        let at = t.offset(rank * n_elem + b * block);
        let x = tl::load(at, [block]);
        tl::send(Dir::E, &scale(&x));
        let y = tl::recv::<f16>(Dir::W, [block]);
        tl::store(at, &y);
    }
}

#[kernel_fn]
fn scale(x: &Tile<f16>) -> Tile<f16> {
    fn twice(v: f64) -> f64 {
        v * 2.0
    }
    x * twice(1.0)
}

mod nested {
    use kernbench_tl::prelude::*;

    #[kernel]
    pub(crate) fn copy(src: Ptr<f32>, dst: Ptr<f32>, #[allow(unused)] unused: bool, n: usize) {
        #[kernel_fn]
        fn twice(n: usize) -> usize {
            n * 2
        }
        tl::store(dst, &tl::load(src, [twice(n) / 2]));
    }
}

fn main() {
    let args = KernelArgs::new()
        .with(
            "t",
            ArgValue::Ptr {
                va: 0x1000_0000,
                dtype: DType::F16,
                len: 16 * 1024,
            },
        )
        .int("n_elem", 1024)
        .int("block", 256);
    let g = kernbench_tl::trace(&hello_send, &args, &[8, 2], &[3, 1]).unwrap();
    assert!(g.to_text().contains("const block = 256"), "{}", g.to_text());
    let names: Vec<_> = kernbench_tl::registered_kernels()
        .iter()
        .map(|k| k.meta().name)
        .collect();
    assert_eq!(names, ["copy", "hello_send"]);
    let _: nested::copy = Default::default();
}
