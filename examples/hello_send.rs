//! `hello_send` from the language guide on every PE of the embedded default
//! machine: each PE sends its slice east and stores what arrives from the
//! west. The data is checked element by element.
//!
//! Run: `cargo run --release --example hello_send [-- --n-elem 1024 --topology FILE]`

use kernbench::kernels::hello_send;
use kernbench::prelude::*;

fn value(rank: usize, i: usize) -> f32 {
    // Exact in f16: small integers.
    ((rank * 7 + i) % 1024) as f32
}

fn main() -> std::process::ExitCode {
    // Errors print as their message, not as a debug dump.
    kernbench::cli::exit_code(try_main().map_err(kernbench::cli::usage))
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let mut n_elem = 1024usize;
    let mut topo = Topology::embedded_default();
    let mut fabric = kernbench::core::sim::FabricModel::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--n-elem" => n_elem = args.next().ok_or("--n-elem needs a value")?.parse()?,
            "--topology" => {
                topo = Topology::resolve(&args.next().ok_or("--topology needs a file or name")?)?
            }
            "--fabric" => fabric = args.next().ok_or("--fabric needs a value")?.parse()?,
            "-h" | "--help" => {
                println!(
                    "usage: hello_send [--n-elem N] [--topology FILE] [--fabric messages|slots]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
    let pes: Vec<PeId> = topo.pes().collect();
    let per_cube = topo.pes_per_cube() as u32;
    let grid = [per_cube, pes.len() as u32 / per_cube];
    let mut machine = Machine::new(topo)?;
    let buf = machine.alloc(DType::F16, pes.len() * n_elem, &pes)?;
    let input: Vec<f32> = (0..pes.len() * n_elem)
        .map(|k| value(k / n_elem, k % n_elem))
        .collect();
    machine.write_buffer(&buf, &input)?;

    let launch = Launch::new(
        &hello_send,
        hello_send::args().t(&buf).n_elem(n_elem),
        pes.clone(),
    )
    .grid(&grid)
    .neighbors(NeighborMap::ring(&pes)?)
    .fabric(fabric);
    let report = simulate(&mut machine, &launch)?;
    print!("{report}");

    let out = machine.read_buffer(&buf)?;
    let w = pes.len();
    let wrong = (0..w * n_elem)
        .filter(|&k| {
            let (r, i) = (k / n_elem, k % n_elem);
            out[k] != value((r + w - 1) % w, i)
        })
        .count();
    if wrong == 0 {
        println!("verified: {} elements on {w} PEs", w * n_elem);
        Ok(())
    } else {
        Err(format!("{wrong} of {} elements wrong", w * n_elem).into())
    }
}
