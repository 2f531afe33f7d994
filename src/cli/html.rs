//! The `--html` flags that `run` and `sweep` share, and writing the page.

use super::args::{self, PeList};
use super::{usage, Result};
use crate::html::{self, Options, Page};
use clap::Args;
use std::path::PathBuf;

/// Flags of the HTML report.
#[derive(Args, Debug, Clone)]
pub struct HtmlArgs {
    /// Write a self-contained HTML report to FILE: the machine with its links
    /// coloured by use, a timeline of the busiest PEs' engines, where the time
    /// went, and for a collective the nccl-tests table and busbw plot. It
    /// loads nothing from the network.
    #[arg(long, value_name = "FILE", help_heading = "HTML report")]
    pub html: Option<PathBuf>,
    /// With --html: the PEs the timeline shows (`sip.cube.pe`, comma-separated);
    /// the busiest when absent.
    #[arg(long, value_name = "PES", requires = "html", conflicts_with = "html_busiest",
          value_parser = args::pe_list, help_heading = "HTML report")]
    pub html_pes: Option<PeList>,
    /// With --html: how many of the busiest PEs (by summed engine busy time)
    /// the timeline shows [default: 8].
    #[arg(long, value_name = "N", requires = "html",
          value_parser = args::count, help_heading = "HTML report")]
    pub html_busiest: Option<usize>,
    /// With --html: at most this many spans in the page, the earliest (the
    /// page says where it cut) [default: 50000].
    #[arg(long, value_name = "N", requires = "html",
          value_parser = args::count, help_heading = "HTML report")]
    pub html_max_spans: Option<usize>,
}

impl HtmlArgs {
    /// Whether a report is asked for (the run must then keep spans).
    pub fn wanted(&self) -> bool {
        self.html.is_some()
    }

    /// Fails before any work when the page could not be written: its folder must exist.
    pub fn check(&self) -> Result<()> {
        self.check_in(None)
    }

    /// [`HtmlArgs::check`], where `created` is a folder the command creates
    /// before it writes the page (a sweep's `--out`).
    pub fn check_in(&self, created: Option<&std::path::Path>) -> Result<()> {
        let Some(path) = &self.html else {
            return Ok(());
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        if !dir.is_dir() && created != Some(dir) {
            return Err(usage(format!(
                "--html {}: the folder {} does not exist",
                path.display(),
                dir.display()
            )));
        }
        if path.is_dir() {
            return Err(usage(format!("--html {}: is a folder", path.display())));
        }
        Ok(())
    }

    /// What the page shows.
    pub fn options(&self) -> Options {
        let d = Options::default();
        Options {
            pes: self.html_pes.clone().map(|l| l.0),
            busiest: self.html_busiest.unwrap_or(d.busiest),
            max_spans: self.html_max_spans.unwrap_or(d.max_spans),
            ..d
        }
    }

    /// Writes the page when --html was given.
    pub fn write(&self, page: &Page) -> Result<()> {
        let Some(path) = &self.html else {
            return Ok(());
        };
        html::write(path, page, &self.options())
            .map_err(|e| usage(format!("--html {}: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
        Ok(())
    }
}
