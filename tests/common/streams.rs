//! Kernels and machines the tests of asynchronous launches share.

use kernbench::core::runtime::Runtime;
use kernbench::core::topology::Topology;
use kernbench::prelude::*;

/// `y = 2 x + y`, `reps` times over, on each instance's block of rows.
#[kernel]
pub fn axpy_rows(x: Tensor<f32>, y: Tensor<f32>, #[constexpr] reps: usize) {
    let (i, s) = (tl::program_id(0), tl::num_programs(0));
    let (m, n) = (x.rows() / s, x.cols());
    let a = tl::load(x.block([i * m, 0], [m, n]), [m, n]);
    for _ in 0..reps {
        let b = tl::load(y.block([i * m, 0], [m, n]), [m, n]);
        tl::store(y.block([i * m, 0], [m, n]), &(a * 2.0 + b));
    }
}

/// Each instance waits for a block from its east neighbour, which never sends.
#[kernel]
pub fn recv_only(t: Tensor<f32>) {
    let (i, s) = (tl::program_id(0), tl::num_programs(0));
    let (m, n) = (t.rows() / s, t.cols());
    let x = tl::recv::<f32>((i + 1) % s, [m, n]);
    tl::store(t.block([i * m, 0], [m, n]), &x);
}

/// Two SIPs of `tiny`, joined by the switch.
pub fn pair() -> Runtime {
    let yaml = kernbench::core::topology::TINY_YAML.replace("sips: 1", "sips: 2");
    Runtime::with_topology(Topology::from_yaml(&yaml, "pair.yaml").unwrap()).unwrap()
}
