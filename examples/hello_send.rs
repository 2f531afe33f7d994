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

/// `hello_send` on every PE of a machine, checked element by element.
#[derive(clap::Parser, Debug)]
struct Args {
    /// Elements each PE sends.
    #[arg(long, default_value_t = 1024, value_parser = kernbench::cli::parse::count)]
    n_elem: usize,
    /// A topology file or built-in name; the embedded default when absent.
    #[arg(long)]
    topology: Option<String>,
    /// How IPCQ messages cross the fabric: messages, or slots (the reference).
    #[arg(long, default_value = "messages")]
    fabric: kernbench::core::sim::FabricModel,
}

fn main() -> std::process::ExitCode {
    // Errors print as their message, not as a debug dump.
    kernbench::cli::exit_code(try_main().map_err(kernbench::cli::usage))
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let args = <Args as clap::Parser>::parse();
    let (n_elem, fabric) = (args.n_elem, args.fabric);
    let topo = match &args.topology {
        Some(t) => Topology::resolve(t)?,
        None => Topology::embedded_default(),
    };
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
