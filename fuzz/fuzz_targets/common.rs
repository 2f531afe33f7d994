//! Turns libFuzzer's bytes into a case of one of the suite's generators.
//!
//! The input seeds proptest's ChaCha RNG (through a hash of all its bytes),
//! so every input maps to one case, and the generators run as they do in
//! the suite. proptest's pass-through RNG, which would read the choices
//! from the input itself, does not fit them: every nested strategy takes
//! half of the bytes left, so a case of a few dozen parts soon reads only
//! zeros, and drawing from a range on an endless run of zeros never ends.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A 32-byte ChaCha seed from the whole input: FNV-1a, then splitmix64.
fn seed(data: &[u8]) -> [u8; 32] {
    let mut state = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// The case of `strategy` that `data` names, if the generator accepts it.
pub fn generate<S: Strategy>(strategy: &S, data: &[u8]) -> Option<S::Value> {
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed(data));
    let mut runner = TestRunner::new_with_rng(config, rng);
    strategy.new_tree(&mut runner).ok().map(|t| t.current())
}
