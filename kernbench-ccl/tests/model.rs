//! The model column against the simulation, where the model is meant to
//! predict it closely: the ring family (latency, link bandwidth shared by
//! the ring's channels, and the credit window of its slowest channel) and
//! recursive doubling (its exchanges step by step, piece after piece).

mod common;

#[test]
fn the_ring_model_predicts_the_simulation_within_15_percent() {
    common::assert_model_within(
        1.15,
        &["ring_allreduce", "all_gather"],
        &[
            ("tiny", 16, 4096),
            ("tiny", 16, 65536),
            ("tiny", 16, 1 << 20),
            ("default", 256, 65536),
        ],
    );
}

#[test]
fn the_recursive_doubling_model_predicts_the_simulation_within_30_percent() {
    common::assert_model_within(
        1.3,
        &["recursive_doubling"],
        &[
            ("tiny", 16, 4096),
            ("tiny", 16, 1 << 20),
            ("tiny", 12, 65536),
            ("default", 256, 65536),
        ],
    );
}
