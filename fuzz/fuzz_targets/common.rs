//! Turns libFuzzer's bytes into a case of one of the suite's generators.
//!
//! proptest's pass-through RNG reads its random bits from the input (zeros
//! once the input runs out), so libFuzzer's mutations of the bytes become
//! mutations of the structured case, and every input maps to one case.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// The case of `strategy` that `data` spells, if the generator accepts it.
pub fn generate<S: Strategy>(strategy: &S, data: &[u8]) -> Option<S::Value> {
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::PassThrough, data);
    let mut runner = TestRunner::new_with_rng(config, rng);
    strategy.new_tree(&mut runner).ok().map(|t| t.current())
}
