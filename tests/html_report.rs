//! `--html` reports in a real browser: headless Chromium loads each page,
//! its console must stay silent, the page's own script must reach `ready`
//! with the machine's link strokes, the timeline's tracks and the result rows
//! in the DOM, and a screenshot of it must not be blank. Chromium comes from
//! Debian's `chromium` package (`.ci/run` installs it); without it these
//! tests fail and say so.
//!
//! `UPDATE_README_IMAGE=1 cargo test --test html_report` also writes the
//! screenshot README.md shows, docs/img/report.png. `CHROMIUM=PATH` picks
//! another browser binary.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long one browser run may take before the test gives up on it.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

fn kernbench<S: AsRef<str>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kernbench"))
        .args(args.iter().map(AsRef::as_ref))
        .output()
        .expect("the kernbench binary runs")
}

fn ok(args: &[&str]) {
    let o = kernbench(args);
    assert!(
        o.status.success(),
        "kernbench {args:?} failed ({:?}): {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs and expects a usage error (exit code 2) whose message holds `want`.
fn usage_error<S: AsRef<str>>(args: &[S], want: &str) {
    let o = kernbench(args);
    let err = String::from_utf8_lossy(&o.stderr);
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    assert_eq!(o.status.code(), Some(2), "kernbench {args:?}: {err}");
    assert!(
        err.contains(want),
        "kernbench {args:?}: `{want}` not in {err}"
    );
}

/// A fresh folder under the system's temp dir, unique to this test and process.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kernbench-html-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The Chromium binary (`$CHROMIUM` when set), or a failure that says how to install it.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "CHROMIUM={} is not a file; unset it to use Debian's chromium \
             (`apt-get install -y chromium`)",
            p.display()
        );
        return p;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")]);
    let found = [
        PathBuf::from("/usr/bin/chromium"),
        PathBuf::from("/usr/bin/chromium-browser"),
    ]
    .into_iter()
    .chain(on_path)
    .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "headless Chromium is not installed, and these tests load the HTML report in it: \
             install Debian's package with `apt-get install -y chromium` (.ci/run does)"
        )
    })
}

/// Runs a command to its end, or kills it after [`BROWSER_TIMEOUT`].
fn run_bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    // Drain both pipes on threads so a chatty browser cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut b).ok();
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut b).ok();
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for chromium") {
            break s;
        }
        if start.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// Headless Chromium on a local page, with its own profile folder and every
/// host name unresolvable (a page that reached for the network would fail).
fn browser(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.arg("--headless")
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--no-first-run")
        .arg("--hide-scrollbars")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--host-resolver-rules=MAP * ~NOTFOUND");
    c
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.canonicalize().unwrap().display())
}

/// What the browser made of a page.
struct Loaded {
    /// The DOM after the page's script ran.
    dom: String,
    /// Lines the page wrote to the console (errors, uncaught exceptions, logs).
    console: Vec<String>,
}

/// Loads `page` (with a URL fragment such as `#selftest`, or `""`).
fn load(page: &Path, fragment: &str, work: &Path) -> Loaded {
    let mut c = browser(&work.join("profile-dom"));
    c.arg("--enable-logging=stderr")
        .arg("--v=0")
        .arg("--dump-dom")
        .arg(file_url(page) + fragment);
    let o = run_bounded(c);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "chromium --dump-dom {} failed: {stderr}",
        page.display()
    );
    Loaded {
        dom: String::from_utf8_lossy(&o.stdout).into_owned(),
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_string)
            .collect(),
    }
}

/// A screenshot of the top of the page.
fn screenshot(page: &Path, png: &Path, work: &Path, size: (u32, u32)) {
    let mut c = browser(&work.join("profile-shot"));
    c.arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(file_url(page));
    let o = run_bounded(c);
    assert!(
        o.status.success() && png.exists(),
        "chromium --screenshot {} failed: {}",
        page.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Distinct colours of a PNG, and the share of its most common one.
fn colours(png: &Path) -> (usize, f64, (u32, u32)) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = dec.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a PNG of sane size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let ch = info.color_type.samples();
    assert_eq!(
        info.bit_depth,
        png::BitDepth::Eight,
        "screenshots are 8 bits a sample"
    );
    let mut count: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    for px in buf[..info.buffer_size()].chunks_exact(ch) {
        *count.entry(&px[..ch.min(3)]).or_default() += 1;
    }
    let total = (info.width * info.height) as usize;
    let top = count.values().copied().max().unwrap_or(0);
    (
        count.len(),
        top as f64 / total.max(1) as f64,
        (info.width, info.height),
    )
}

/// The JSON block the page's script reads.
fn page_data(html: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"report-data\">";
    let start = html.find(open).expect("the page has its data block") + open.len();
    let end = start
        + html[start..]
            .find("</script>")
            .expect("the data block ends");
    serde_json::from_str(&html[start..end]).expect("the data block is JSON")
}

/// The page loads nothing: no `http(s)://` anywhere but SVG namespace names,
/// no external script, style sheet or font.
fn assert_offline(html: &str) {
    for scheme in ["http://", "https://"] {
        for (i, _) in html.match_indices(scheme) {
            assert!(
                html[..i].ends_with("xmlns=\""),
                "the page names a URL: {}",
                &html[i.saturating_sub(40)..(i + 60).min(html.len())]
            );
        }
    }
    for bad in [
        "<link",
        "<script src",
        "@import",
        "@font-face",
        "<iframe",
        "<img",
    ] {
        assert!(!html.contains(bad), "the page holds `{bad}`");
    }
    for attr in ["src=\"//", "href=\"//", "url(//"] {
        assert!(!html.contains(attr), "the page holds `{attr}`");
    }
}

/// The value of `name="..."` on the status element.
fn status_attr(dom: &str, name: &str) -> String {
    let at = dom
        .find("id=\"report-status\"")
        .expect("the status element is in the DOM");
    let tag_end = at + dom[at..].find('>').unwrap();
    let tag = &dom[at..tag_end];
    let key = format!("{name}=\"");
    let k = tag
        .find(&key)
        .unwrap_or_else(|| panic!("the status has no {name}: {tag}"))
        + key.len();
    tag[k..k + tag[k..].find('"').unwrap()].to_string()
}

/// Loads a report and checks that it rendered what its data holds; returns
/// the DOM and the data.
fn check_report(page: &Path, work: &Path, rows: usize) -> (String, Value) {
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_offline(&html);
    let data = page_data(&html);
    let links = data["machine"]["links"].as_array().unwrap().len();
    let tracks = data["timeline"]["tracks"].as_array().unwrap().len();
    let spans = data["timeline"]["spans"].as_array().unwrap().len() / 5;
    assert!(links > 0 && tracks > 0 && spans > 0, "an empty report");

    // `#selftest` makes the page drive its own zoom, pan, buttons and
    // tooltips with synthetic mouse events once it is drawn.
    let l = load(page, "#selftest", work);
    assert!(
        l.console.is_empty(),
        "the page wrote to the console:\n{}",
        l.console.join("\n")
    );
    let dom = &l.dom;
    assert!(
        !dom.contains("class=\"js-error\""),
        "the page caught a script error: {}",
        &dom[dom.find("class=\"js-error\"").unwrap()..][..300.min(dom.len())]
    );
    assert_eq!(
        status_attr(dom, "data-state"),
        "ready",
        "the script did not finish"
    );
    assert_eq!(status_attr(dom, "data-selftest"), "pass");
    // The machine: one stroke per direction of each connected pair, some busy.
    assert_eq!(dom.matches("<line data-k=").count(), links);
    assert_eq!(status_attr(dom, "data-links"), links.to_string());
    assert!(
        dom.contains("class=\"link busy\""),
        "no link carried traffic"
    );
    assert!(
        dom.contains("class=\"node pe ran\""),
        "no PE of the run is drawn"
    );
    // The timeline: the script built a label per track and drew spans on the canvas.
    assert_eq!(dom.matches("class=\"tl-track\"").count(), tracks);
    assert_eq!(
        dom.matches("class=\"tl-group\"").count(),
        data["timeline"]["groups"].as_array().unwrap().len()
    );
    assert_eq!(status_attr(dom, "data-spans"), spans.to_string());
    let drawn: usize = status_attr(dom, "data-drawn").parse().unwrap();
    assert!(
        drawn > 0 && drawn <= spans,
        "{drawn} spans drawn of {spans}"
    );
    // The results and the bottlenecks.
    assert_eq!(dom.matches("class=\"result-row").count(), rows);
    assert_eq!(status_attr(dom, "data-rows"), rows.to_string());
    for kind in ["time", "link", "engine", "stall", "last"] {
        assert!(
            dom.contains(&format!("data-kind=\"{kind}\"")),
            "no `{kind}` finding"
        );
    }
    assert!(dom.contains("id=\"link-table\"") && dom.contains("class=\"link-row\""));

    // A screenshot that is not blank.
    let png = work.join("shot.png");
    screenshot(page, &png, work, (1280, 1600));
    let (n, top, size) = colours(&png);
    assert_eq!(size, (1280, 1600));
    assert!(
        n > 50 && top < 0.9,
        "the screenshot looks blank: {n} colours, the commonest covering {:.0}%",
        top * 100.0
    );
    (l.dom, data)
}

#[test]
fn a_ring_all_reduce_report_renders_in_a_browser() {
    let d = temp_dir("ring");
    let page = d.join("ring.html");
    ok(&[
        "run",
        "ring_allreduce",
        "--topology",
        "tiny",
        "--size",
        "64K",
        "--html",
        page.to_str().unwrap(),
    ]);
    let (dom, data) = check_report(&page, &d, 1);
    // Tiny has 16 PEs; the timeline shows the 8 busiest and the fabric's busiest links.
    let groups = data["timeline"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 9);
    assert_eq!(groups[8]["name"], "fabric: busiest links");
    assert!(dom.contains("id=\"busbw-plot\""));
    assert!(!dom.contains("id=\"timeline-note\""), "the cap was not hit");

    if std::env::var_os("UPDATE_README_IMAGE").is_some() {
        let img = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img/report.png");
        std::fs::create_dir_all(img.parent().unwrap()).unwrap();
        screenshot(&page, &img, &d, (1280, 2300));
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_sweep_report_renders_in_a_browser() {
    let d = temp_dir("sweep");
    let page = d.join("sweep.html");
    let out = d.join("out");
    ok(&[
        "sweep",
        "--collective",
        "all_reduce",
        "--algos",
        "ring_allreduce,tree_allreduce",
        "--topology",
        "tiny",
        "-b",
        "16K",
        "-e",
        "64K",
        "-f",
        "4",
        "--no-check",
        "-q",
        "--out",
        out.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
        "--html-point",
        "tree_allreduce@16K",
        "--html-pes",
        "0.0.0,0.1.0",
    ]);
    let (dom, data) = check_report(&page, &d, 4);
    assert!(dom.contains("tree_allreduce at 16384 B per rank"));
    // The two PEs asked for, in that order, then the fabric.
    let groups = data["timeline"]["groups"].as_array().unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["PE (0,0,0)", "PE (0,1,0)", "fabric: busiest links"]);
    // The plot has a line per algorithm.
    let plot = &dom[dom.find("id=\"busbw-plot\"").unwrap()..];
    assert_eq!(plot.matches("<polyline").count(), 2);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_capped_timeline_says_so() {
    let d = temp_dir("cap");
    let page = d.join("cap.html");
    ok(&[
        "run",
        "ring_allreduce",
        "--topology",
        "tiny",
        "--size",
        "64K",
        "--html",
        page.to_str().unwrap(),
        "--html-max-spans",
        "100",
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    let data = page_data(&html);
    assert_eq!(data["timeline"]["spans"].as_array().unwrap().len(), 5 * 100);
    let total = data["timeline"]["total"].as_u64().unwrap();
    assert!(total > 100);
    assert!(html.contains("id=\"timeline-note\""));
    assert!(html.contains(&format!("the first 100 of {total} spans")));
    // The earliest spans are the ones kept.
    let spans: Vec<u64> = data["timeline"]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let latest_kept = spans.chunks(5).map(|s| s[1]).max().unwrap();
    let note = data["timeline"]["note"].as_str().unwrap();
    assert!(
        note.contains(&format!("{:.3} us", latest_kept as f64 / 1e6)),
        "{note}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_kernel_report_renders_in_a_browser() {
    let d = temp_dir("gemm");
    let page = d.join("gemm.html");
    ok(&[
        "run",
        "gemm_f16",
        "--topology",
        "tiny",
        "--pes",
        "2",
        "--set",
        "a=256x256",
        "--set",
        "b=256x256",
        "--set",
        "c=256x256",
        "--html",
        page.to_str().unwrap(),
    ]);
    // A kernel has no nccl-tests table and no plot.
    let (dom, data) = check_report(&page, &d, 0);
    assert!(!dom.contains("id=\"busbw-plot\""));
    let tracks: Vec<&str> = data["timeline"]["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for engine in ["DMA_IN", "GEMM", "DMA_WB"] {
        assert_eq!(
            tracks.iter().filter(|t| **t == engine).count(),
            2,
            "{engine} on both PEs: {tracks:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_kernel_reading_another_pes_slice_shows_its_remote_bytes() {
    let d = temp_dir("remote");
    let page = d.join("remote.html");
    // Each buffer is split into 4 shards of 4096 elements, and the 4
    // instances read and write elements 0..4096: all in PE 0's slice.
    ok(&[
        "run",
        "vector_add",
        "--pes",
        "4",
        "--set",
        "x.len=16384",
        "--set",
        "y.len=16384",
        "--set",
        "z.len=16384",
        "--set",
        "n=4096",
        "--set",
        "block=1024",
        "--html",
        page.to_str().unwrap(),
    ]);
    let (dom, data) = check_report(&page, &d, 0);
    let pes = data["machine"]["pes"].as_array().unwrap();
    let block = 1024 * 4;
    assert_eq!(pes[0]["hbm"], 12 * block);
    assert_eq!(pes[0]["served"], 9 * block);
    assert_eq!(pes[0]["bound_by"], "HBM");
    for p in &pes[1..] {
        assert_eq!(p["hbm"], 0);
        assert_eq!(
            (&p["remote_read"], &p["remote_write"]),
            (&(2 * block).into(), &block.into())
        );
        assert_eq!(p["bound_by"], "remote");
    }
    assert!(
        dom.contains("data-kind=\"memory\""),
        "no remote memory finding"
    );
    assert!(
        dom.contains(&format!(
            "the PEs' DMAs moved {} B to or from memory elsewhere ({} B read, {} B written)",
            9 * block,
            6 * block,
            3 * block
        )),
        "{dom}"
    );
    assert!(dom.contains("the analytic bound is 0.240 us, set by HBM of PE (0,0,0)"));
    let _ = std::fs::remove_dir_all(&d);
}

/// The checks above would see a broken page: a script error shows in the
/// DOM, on the console, and keeps the status from `ready`.
#[test]
fn a_broken_page_is_caught() {
    let d = temp_dir("broken");
    let page = d.join("ring.html");
    ok(&[
        "run",
        "ring_allreduce",
        "--topology",
        "tiny",
        "--size",
        "16K",
        "--html",
        page.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    let call = "var tl = initTimeline();";
    assert!(html.contains(call));
    let broken = d.join("broken.html");
    std::fs::write(&broken, html.replace(call, "var tl = initTimelineX();")).unwrap();
    let l = load(&broken, "", &d);
    assert!(l.dom.contains("class=\"js-error\""), "no error marker");
    assert_eq!(status_attr(&l.dom, "data-state"), "error");
    assert!(
        l.console.iter().any(|c| c.contains("initTimelineX")),
        "the console did not show the error: {:?}",
        l.console
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// The library refuses what it cannot draw: a run without spans, a PE that did not run.
#[test]
fn the_library_refuses_runs_it_cannot_show() {
    use kernbench::ccl::run::{ranks, run_on, RunSpec};
    use kernbench::ccl::Registry;
    use kernbench::core::sim::FabricModel;
    use kernbench::core::topology::Topology;
    use kernbench::core::{DType, PeId};
    use kernbench::html::{render, HtmlError, Options, Page};

    let topo = Topology::builtin("tiny").unwrap();
    let reg = Registry::builtin();
    let algo = reg.get("ring_allreduce").unwrap();
    let pes = ranks(&topo, algo).unwrap();
    let mut spec = RunSpec::timing(4096, DType::F32, FabricModel::Messages);
    let plain = run_on(&topo, algo, &pes, &spec).unwrap();
    let e = render(&Page::new("t", &topo, &plain.outcome), &Options::default());
    assert!(matches!(e, Err(HtmlError::NoSpans)), "{:?}", e.err());
    spec.trace = true;
    let traced = run_on(&topo, algo, &pes, &spec).unwrap();
    let page = Page::new("t <b>", &topo, &traced.outcome);
    let html = render(&page, &Options::default()).unwrap();
    assert!(html.contains("<title>t &lt;b&gt;</title>"));
    let opts = Options {
        pes: Some(vec![PeId::new(0, 0, 1), PeId::new(0, 9, 0)]),
        ..Options::default()
    };
    let e = render(&page, &opts).unwrap_err().to_string();
    assert!(e.contains("PE 0.9.0 did not run"), "{e}");
}

fn cat(a: &[&str], b: &[&str]) -> Vec<String> {
    a.iter().chain(b).map(|s| s.to_string()).collect()
}

#[test]
fn bad_html_flags_are_usage_errors() {
    let d = temp_dir("flags");
    let page = d.join("x.html");
    let p = page.to_str().unwrap();
    let run = [
        "run",
        "ring_allreduce",
        "--topology",
        "tiny",
        "--size",
        "16K",
    ];
    let with = |extra: &[&str]| cat(&run, extra);
    usage_error(
        &with(&["--html", p, "--html-pes", "0.3.9"]),
        "PE 0.3.9 did not run",
    );
    usage_error(
        &with(&["--pes", "4", "--html", p, "--html-pes", "0.3.0"]),
        "PE 0.3.0 did not run in this launch; its 4 PE(s) are 0.0.0, 0.0.1, 0.0.2, 0.0.3",
    );
    usage_error(&with(&["--html-pes", "0.0.1"]), "--html");
    usage_error(
        &with(&["--html", p, "--html-busiest", "0"]),
        "give at least 1",
    );
    usage_error(
        &with(&["--html", p, "--html-max-spans", "0"]),
        "give at least 1",
    );
    usage_error(
        &with(&["--html", p, "--html-pes", "0.0.1", "--html-busiest", "2"]),
        "cannot be used with",
    );
    usage_error(
        &with(&["--html", d.join("no/such/dir/x.html").to_str().unwrap()]),
        "does not exist",
    );
    assert!(!page.exists());
    let sweep = [
        "sweep",
        "--collective",
        "all_reduce",
        "--algos",
        "ring_allreduce",
        "--topology",
        "tiny",
        "-b",
        "16K",
        "-e",
        "16K",
        "-q",
        "--out",
        d.to_str().unwrap(),
        "--html",
        p,
    ];
    let sw = |extra: &[&str]| cat(&sweep, extra);
    usage_error(
        &sw(&["--html-point", "tree_allreduce@16K"]),
        "not in this sweep",
    );
    usage_error(
        &sw(&["--html-point", "ring_allreduce@32K"]),
        "not a size of this sweep",
    );
    usage_error(&sw(&["--html-point", "ring_allreduce"]), "ALGO@SIZE");
    usage_error(&sw(&["--shard", "1/2"]), "cannot be written by one --shard");
    assert!(!page.exists());
    let _ = std::fs::remove_dir_all(&d);
}
